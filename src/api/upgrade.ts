import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AppError, ERRORS } from '../errors.ts';
import { errorMessage } from '../log.ts';
import type { Authenticator } from './auth.ts';
import { compile, match, type ApiDeps, type Route, type WsRoute } from './route.ts';
import { validate } from './validate.ts';

/** Answers a refused upgrade with the usual error envelope, as plain HTTP on the raw socket. */
function refuse(socket: Duplex, err: AppError, requestId: string): void {
  const body = JSON.stringify({ error: { code: err.code, message: err.message, retryable: ERRORS[err.code].retryable, ...(err.details ? { details: err.details } : {}), request_id: requestId } });
  const status = ERRORS[err.code].status;
  socket.end(`HTTP/1.1 ${status} ${err.code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
}

/** Serves WebSocket routes on the API server; any other upgrade is refused. */
export function attachWebSockets(server: Server, routes: WsRoute[], deps: ApiDeps, auth: Authenticator, newRequestId: (req: IncomingMessage) => string): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  const compiled = routes.map((r) => compile({ ...r, method: 'GET' } as unknown as Route));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const requestId = newRequestId(req);
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://api');
      const found = match(compiled, 'GET', url.pathname);
      if (!found || found === 'methodMismatch') throw new AppError('not_found', `no WebSocket endpoint at ${url.pathname}`);
      const route = routes[compiled.findIndex((c) => c.route.path === found.route.path)]!;
      let caller;
      try {
        caller = auth.authenticate(req);
      } catch (err) {
        deps.store.audit.record({ actor: 'anonymous', action: 'auth.failed', requestId, outcome: 'denied', detail: { route: route.operationId } });
        throw err;
      }
      const params = Object.fromEntries(Object.entries(found.params).map(([k, v]) => [k, decodeURIComponent(v)]));
      const query = route.query ? validate(route.query, Object.fromEntries(url.searchParams), 'query') : {};
      const run = await route.open({ req, res: undefined as never, params, body: undefined, query, caller, requestId, deps });
      wss.handleUpgrade(req, socket, head, (ws) => run(ws));
    })().catch((err: unknown) => {
      if (err instanceof AppError) return refuse(socket, err, requestId);
      if (err instanceof URIError) return refuse(socket, new AppError('invalid_request', 'the path is not valid percent-encoding'), requestId);
      deps.log.error('websocket upgrade failed', { request_id: requestId, error: errorMessage(err) });
      refuse(socket, new AppError('internal', `internal error; quote request id ${requestId} when reporting it`), requestId);
    });
  });
}
