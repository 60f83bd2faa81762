import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AppError, errorEnvelope } from '../errors.ts';
import { answerRaw } from '../http/raw-answer.ts';
import { reportUnexpected } from '../boundary.ts';
import { decodeComponent, parseTarget } from '../http/target.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { checkUpgrade } from './browser-guard.ts';
import { compile, match, type ApiDeps, type Route, type WsRoute } from './route.ts';
import { validate } from './validate.ts';

const HANDSHAKE_TIMEOUT_MS = 15_000;

/** Answers a refused upgrade with the usual error envelope, as plain HTTP on the raw socket. */
function refuse(socket: Duplex, err: AppError, requestId: string): void {
  answerRaw(socket, err.status, JSON.stringify(errorEnvelope(err, requestId)), { 'x-request-id': requestId, ...(err.retryAfterS !== undefined ? { 'retry-after': String(err.retryAfterS) } : {}) });
}

/** Serves WebSocket routes on the API server; any other upgrade is refused. */
export function attachWebSockets(server: Server, routes: WsRoute[], deps: ApiDeps, auth: Authenticator, newRequestId: (req: IncomingMessage) => string): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  const compiled = routes.map((r) => compile({ ...r, method: 'GET' } as unknown as Route));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A client that resets or hangs up before, during or after the handshake must not reach the process.
    socket.on('error', () => socket.destroy());
    const requestId = newRequestId(req);
    // Auth, lookup and validation get a bounded time; a handshake that never completes frees its socket.
    const handshake = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    handshake.unref();
    void (async () => {
      // Browsers send Origin on every upgrade: with auth off only a local program may open one, with auth on no other site's page.
      const refused = checkUpgrade(req.rawHeaders, req.url, { authDisabled: deps.config.authDisabled, apiPort: deps.config.api.port });
      if (refused) {
        deps.metrics.inc('sandboxd_api_browser_refusals_total', 'API requests and upgrades refused for their Host, Origin or proxy headers, by code.', { code: refused.code });
        throw refused;
      }
      const url = parseTarget(req.url);
      if (!url) throw new AppError('invalid_request', 'the request target is not a valid path');
      const found = match(compiled, 'GET', url.pathname);
      if (!found || found === 'methodMismatch') throw new AppError('not_found', `no WebSocket endpoint at ${url.pathname}`);
      const route = routes[compiled.findIndex((c) => c.route.path === found.route.path)]!;
      const caller = auth.authenticate(req, { route: route.operationId, requestId });
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(found.params)) {
        const decoded = decodeComponent(v);
        if (decoded === undefined) throw new AppError('invalid_request', `${k}: not valid percent-encoding`, { field: k });
        params[k] = decoded;
      }
      const query = route.query ? validate(route.query, Object.fromEntries(url.searchParams), 'query') : {};
      const run = await route.open({ req, res: undefined as never, params, body: undefined, query, caller, requestId, deps });
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => {
        clearTimeout(handshake);
        // ws reports protocol violations (bad frames, oversized messages) as 'error' and then closes.
        ws.on('error', () => ws.terminate());
        try {
          run(ws);
        } catch (err) {
          reportUnexpected(deps.log, deps.metrics, 'websocket', err, { request_id: requestId, route: route.operationId });
          ws.terminate();
        }
      });
    })().catch((err: unknown) => {
      clearTimeout(handshake);
      try {
        if (err instanceof AppError) return refuse(socket, err, requestId);
        reportUnexpected(deps.log, deps.metrics, 'websocket_upgrade', err, { request_id: requestId });
        refuse(socket, new AppError('internal', `internal error; quote request id ${requestId} when reporting it`), requestId);
      } catch {
        socket.destroy();
      }
    });
  });
}
