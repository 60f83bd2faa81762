import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.ts';
import { AppError, ERRORS } from '../errors.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { SandboxRecord, SandboxStore } from '../store/sandboxes.ts';
import { parsePreviewHost } from './hosts.ts';
import type { Authenticator } from '../api/auth.ts';
import { notFoundPage, notListeningPage, privatePage, startingPage, wakeFailedPage } from './pages.ts';
import type { PreviewTokens } from './preview-tokens.ts';
import { isPrivate, previewAccess, stripPreviewCredentials } from './private.ts';
import { proxyHttp, proxyUpgrade, UPSTREAM_BUSY } from './proxy.ts';
import type { Waker } from './wake.ts';

/** What the gateway needs; it never sees the API's routes, so no Host header can reach them through it. */
export interface GatewayDeps {
  config: Config;
  tokens: PreviewTokens;
  auth: Authenticator;
  sandboxes: SandboxStore;
  runtime: Runtime;
  waker: Waker;
  activity: Activity;
  log: Logger;
}

/** A browser navigation gets pages; any other client gets the JSON error envelope. */
const wantsHtml = (req: IncomingMessage) => req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '');

function answer(req: IncomingMessage, res: ServerResponse, err: AppError, html: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const status = ERRORS[err.code].status;
  if (wantsHtml(req)) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    return void res.end(html);
  }
  const body = JSON.stringify({ error: { code: err.code, message: err.message, retryable: ERRORS[err.code].retryable, request_id: 'gateway' } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(body);
}

/**
 * The preview gateway on HTTP_PORT: `s-<id>-<port>.preview.<domain>` (any case) is proxied to that port of
 * that sandbox, waking it first when it sleeps. Requests are held, never dropped, while it wakes.
 */
export function createGatewayServer(deps: GatewayDeps): Server {
  const { config, sandboxes, runtime, waker, activity } = deps;
  // Keyed by id and row version: any start or stop bumps the version, so a restarted container's new address is looked up afresh.
  const addresses = new Map<string, string>();

  /** The sandbox and port a request targets, or undefined for anything else (an unknown host, a port it does not publish). */
  const resolve = (req: IncomingMessage) => {
    const target = parsePreviewHost(req.headers.host, config.previewDomain);
    const rec = target && sandboxes.get(target.sandboxId);
    if (!target || !rec || !rec.ports.includes(target.port) || rec.status === 'purging') return undefined;
    return { rec, port: target.port };
  };

  /** The address to send a request to: at once when it runs, after a shared wake when it sleeps. */
  const address = async (req: IncomingMessage, res: ServerResponse | undefined, rec: SandboxRecord, port: number): Promise<string | undefined> => {
    const id = rec.id;
    const key = `${id}@${rec.version}`;
    if (rec.status === 'running') {
      const known = addresses.get(key) ?? (await runtime.inspect(id))?.ip ?? undefined;
      if (known) return (addresses.set(key, known), known);
    }
    const wake = waker.wake(id, port, Date.now() + config.wakeHoldS * 1000);
    if (res && wantsHtml(req)) {
      // A person is looking at a blank tab: after a moment, show that something is happening.
      const timer = new Promise<'slow'>((r) => setTimeout(() => r('slow'), config.startingPageAfterMs).unref());
      const first = await Promise.race([wake, timer]);
      if (first === 'slow') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '2' });
        res.end(startingPage());
        wake.catch(() => undefined);
        return undefined;
      }
    }
    return wake;
  };

  const server = createServer(async (req, res) => {
    const target = resolve(req);
    if (!target) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(notFoundPage());
    }
    const { rec, port } = target;
    if (isPrivate(rec, port)) {
      const access = previewAccess(req, rec, port, deps.tokens, deps.auth, config.previewTls);
      if (access.allow === false) return answer(req, res, new AppError('unauthorized', access.why), privatePage(), { 'cache-control': 'no-store' });
      if (access.allow === 'redirect') {
        res.writeHead(302, { location: access.location, 'set-cookie': access.cookie, 'cache-control': 'no-store' });
        return void res.end();
      }
      stripPreviewCredentials(req, access.viaApiToken ?? false);
    }
    activity.touch(rec.id, 'gateway');
    try {
      const ip = await address(req, res, rec, port);
      if (!ip) return;
      await proxyHttp(req, res, ip, port, config.gatewayQueueWaitS * 1000).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code === UPSTREAM_BUSY) {
          return answer(req, res, new AppError('capacity', `${err.message}; retry shortly`), wakeFailedPage(err.message), { 'retry-after': '2' });
        }
        addresses.delete(`${rec.id}@${rec.version}`);
        if (err.code !== 'ECONNREFUSED' && err.code !== 'EHOSTUNREACH') throw err;
        // Running, but the app is not (yet) listening on this port.
        answer(req, res, new AppError('sandbox_unavailable', `nothing listens on port ${port} in this sandbox yet`), notListeningPage(port), { 'retry-after': '3' });
      });
    } catch (err) {
      const failure = err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err));
      const retryAfter = failure.retryAfterS ?? (failure.code === 'not_ready' ? 5 : undefined);
      const headers: Record<string, string> = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {};
      if (failure.code === 'not_found') return answer(req, res, failure, notFoundPage());
      deps.log.warn('preview request failed', { sandbox: rec.id, port, code: failure.code, error: failure.message });
      answer(req, res, failure, wakeFailedPage(failure.message), headers);
    }
  });

  server.on('upgrade', async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = resolve(req);
    if (!target) return void socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    const { rec, port } = target;
    if (isPrivate(rec, port)) {
      const access = previewAccess(req, rec, port, deps.tokens, deps.auth, config.previewTls);
      if (access.allow !== true) return void socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      stripPreviewCredentials(req, access.viaApiToken ?? false);
    }
    const lease = activity.openLease(rec.id, 'preview_ws');
    socket.once('close', () => lease.release());
    try {
      const ip = await address(req, undefined, rec, port);
      await proxyUpgrade(req, socket, head, ip!, port);
    } catch (err) {
      const failure = err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err));
      socket.end(`HTTP/1.1 ${ERRORS[failure.code].status} ${failure.code}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
  });
  return server;
}
