import { createServer, type Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Authenticator } from '../auth/authenticator.ts';
import { reportUnexpected } from '../boundary.ts';
import type { Config } from '../config.ts';
import { AppError, ERRORS, errorEnvelope } from '../errors.ts';
import { answerClientError } from '../http/client-error.ts';
import { clientKey, isLocal } from '../http/client-address.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { PreviewTargets } from '../sandboxes/previews.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import { checkRequest, type Checked } from './framing.ts';
import { parsePreviewHost } from './hosts.ts';
import { badRequestPage, notFoundPage, notListeningPage, privatePage, sandboxDownPage, startingPage, wakeFailedPage } from './pages.ts';
import type { PreviewTokens } from '../auth/preview-tokens.ts';
import { isPrivate, previewAccess, stripCredentials } from './private.ts';
import { BAD_UPSTREAM, isUpstreamError, proxyHttp, UPSTREAM_BUSY, UPSTREAM_TIMEOUT } from './proxy.ts';
import { Upstreams } from './upstreams.ts';
import { sandboxDown, type Waker } from './wake.ts';
import { handleUpgrade } from './ws.ts';

/** What the gateway needs; it never sees the API's routes, so no Host header can reach them through it. */
export interface GatewayDeps {
  config: Config;
  tokens: PreviewTokens;
  auth: Authenticator;
  /** The records hosts name and where their apps answer (kept in memory, re-read when their version moves). */
  targets: PreviewTargets;
  waker: Waker;
  activity: Activity;
  log: Logger;
  /** Where unexpected errors, refused requests and bad upstream answers are counted (/metrics). */
  metrics?: Metrics;
}

/** The state the request and upgrade handlers share. */
export interface Gateway {
  deps: GatewayDeps;
  upstreams: Upstreams;
  /** Open preview WebSockets per sandbox id, for SANDBOXD_PREVIEW_WS_PER_SANDBOX. */
  openWebSockets: Map<string, number>;
  /** The sandbox and port a checked request targets, or undefined for anything else. */
  resolve(host: string): { rec: SandboxRecord; port: number } | undefined;
  /** The address (and pool) to send to: at once when it runs, after a shared wake when it sleeps. */
  address(req: IncomingMessage, res: ServerResponse | undefined, rec: SandboxRecord, port: number): Promise<{ host: string; agent: Agent } | undefined>;
  /** Counts one event in /metrics; never throws. */
  count(name: string, help: string, labels: Record<string, string>): void;
  /** Records activity; a failed write (a full disk) is counted, never thrown. */
  touch(sandboxId: string): void;
}

/** How often pools of sandboxes that stopped or restarted are destroyed. */
const SWEEP_MS = 5000;

/** A browser navigation gets pages; any other client gets the JSON error envelope. */
const wantsHtml = (req: IncomingMessage) => req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '');

function answer(req: IncomingMessage, res: ServerResponse, err: AppError, html: string, headers: Record<string, string> = {}, status: number = ERRORS[err.code].status): void {
  if (res.headersSent) return void res.destroy();
  // A body the gateway did not read would stall the connection: it ends with this answer.
  if (!req.complete) headers = { ...headers, connection: 'close' };
  if (wantsHtml(req)) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    return void res.end(html);
  }
  const body = JSON.stringify(errorEnvelope(err, 'gateway'));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(body);
}

/** The answer to a failed wake or proxy attempt; only errors of the gateway's own making are unexpected. */
function failure(err: unknown, port: number): { err: AppError; html: string; headers: Record<string, string> } | undefined {
  if (err instanceof AppError) {
    const retryAfter = err.retryAfterS ?? (err.code === 'not_ready' ? 5 : undefined);
    const html = err.code === 'not_found' ? notFoundPage() : err.code === 'sandbox_down' ? sandboxDownPage() : wakeFailedPage(err.message);
    return { err, html, headers: retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {} };
  }
  if (!isUpstreamError(err)) return undefined;
  if (err.code === UPSTREAM_TIMEOUT) return { err: new AppError('gateway_timeout', `${err.message}; retry, or raise SANDBOXD_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_S for a slow app`), html: wakeFailedPage(err.message), headers: {} };
  if (err.code === UPSTREAM_BUSY) return { err: new AppError('capacity', `${err.message}; retry shortly`), html: wakeFailedPage(err.message), headers: { 'retry-after': '2' } };
  if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH') {
    // Running, but the app is not (yet) listening on this port.
    return { err: new AppError('sandbox_unavailable', `nothing listens on port ${port} in this sandbox yet`), html: notListeningPage(port), headers: { 'retry-after': '3' } };
  }
  const why = err.code === BAD_UPSTREAM ? err.message : `the app's connection failed (${err.code ?? err.message})`;
  return { err: new AppError('sandbox_unavailable', why), html: wakeFailedPage(why), headers: {} };
}

/**
 * The preview gateway on HTTP_PORT: `s-<id>-<port>.preview.<domain>` (any case) is proxied to that port of
 * that sandbox, waking it first when it sleeps. Requests are held, never dropped, while it wakes. Nothing a
 * client or an app sends can throw past a handler here: each one answers its own request (4xx for the
 * client's faults, 502 for the app's, 500 for the gateway's own, which are also logged and counted).
 */
export function createGatewayServer(deps: GatewayDeps): Server {
  const { config, targets, waker, activity, log, metrics } = deps;
  const limits = config.limits.gateway;
  const upstreams = new Upstreams(4096, (reason) => gw.count('sandboxd_gateway_upstream_pools_dropped_total', 'Per-sandbox upstream connection pools destroyed (their sockets closed), by why.', { reason }));

  const gw: Gateway = {
    deps,
    upstreams,
    openWebSockets: new Map(),
    resolve(host) {
      const target = parsePreviewHost(host, config.previewDomain);
      const rec = target && targets.get(target.sandboxId);
      if (!target || !rec || !rec.ports.includes(target.port) || rec.status === 'purging') return undefined;
      return { rec, port: target.port };
    },
    async address(req, res, rec, port) {
      if (rec.status === 'running') {
        const known = upstreams.get(rec.id, rec.version);
        if (known) return known;
        const at = await targets.endpoint(rec.id, port);
        if (at) return upstreams.bind(rec.id, rec.version, at.host);
      }
      // Checked here too (the waker checks again under the lock): no timer, no wait for a sandbox that stays down.
      if (rec.status === 'destroyed' || rec.status === 'error') throw sandboxDown(rec.id, rec.status);
      const wake = waker.wake(rec.id, port, Date.now() + config.wakeHoldS * 1000);
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
      const host = await wake;
      // The wake moved the row on: the pool belongs to the version that now runs.
      return upstreams.bind(rec.id, targets.get(rec.id)?.version ?? rec.version, host);
    },
    count(name, help, labels) {
      metrics?.inc(name, help, labels);
    },
    touch(sandboxId) {
      // Never throws: a write the disk refuses is dropped and counted there (sandboxd_dropped_writes_total).
      activity.touch(sandboxId, 'gateway');
    },
  };

  const refuseClient = (req: IncomingMessage, res: ServerResponse, checked: Extract<Checked, { ok: false }>) => {
    gw.count('sandboxd_gateway_refused_requests_total', 'Requests the gateway refused as malformed or ambiguous (4xx, connection closed).', { status: String(checked.status) });
    res.shouldKeepAlive = false;
    answer(req, res, new AppError('invalid_request', checked.why), badRequestPage(checked.why), { connection: 'close' }, checked.status);
  };

  /** Proxied requests in flight per client address, sandbox and port, for SANDBOXD_GATEWAY_REQUESTS_PER_CLIENT. */
  const inFlight = new Map<string, number>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // A client that resets mid-body makes the request emit 'error'; it must reach no one.
    req.on('error', () => undefined);
    const checked = checkRequest(req, limits.maxHeaders);
    if (!checked.ok) return refuseClient(req, res, checked);
    if (checked.body !== 'none') {
      // Node's requestTimeout stops watching once a response is under way; a body that never ends is cut here.
      const cut = setTimeout(() => req.complete || req.socket.destroy(), limits.requestTimeoutS * 1000);
      cut.unref();
      req.once('close', () => clearTimeout(cut));
    }
    const target = gw.resolve(checked.host);
    if (!target) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(notFoundPage());
    }
    const { rec, port } = target;
    if (isPrivate(rec, port)) {
      const access = previewAccess(req, checked.path, rec, port, deps.tokens, deps.auth, config.previewTls);
      if (access.allow === false) return answer(req, res, new AppError('unauthorized', access.why), privatePage(), { 'cache-control': 'no-store' });
      if (access.allow === 'redirect') {
        res.writeHead(302, { location: access.location, 'set-cookie': access.cookie, 'cache-control': 'no-store' });
        return void res.end();
      }
    }
    // Public or private: our API tokens and the preview cookie never reach the app.
    checked.path = stripCredentials(req, checked.path, deps.auth);
    // One client address holds at most this many of a preview's upstream requests (its 64 pooled sockets are
    // everyone's). Loopback is a local proxy carrying everyone's traffic: not capped.
    const address = req.socket.remoteAddress;
    if (address && !isLocal(address)) {
      const key = `${clientKey(address)} ${rec.id} ${port}`;
      const n = inFlight.get(key) ?? 0;
      if (n >= limits.requestsPerClient) {
        gw.count('sandboxd_gateway_client_requests_refused_total', 'Preview requests refused because their client address already had its maximum in flight to that port.', {});
        return answer(req, res, new AppError('rate_limited', `this address already has ${limits.requestsPerClient} requests in flight to this preview (SANDBOXD_GATEWAY_REQUESTS_PER_CLIENT); retry when they finish`), wakeFailedPage('too many requests in flight; retry shortly'), { 'retry-after': '2' });
      }
      inFlight.set(key, n + 1);
      res.once('close', () => {
        const left = (inFlight.get(key) ?? 1) - 1;
        if (left > 0) inFlight.set(key, left);
        else inFlight.delete(key);
      });
    }
    gw.touch(rec.id);
    const fail = (f: NonNullable<ReturnType<typeof failure>>) => {
      // Expected answers, not failures: an anonymous flood at a destroyed sandbox must not flood the log.
      if (f.err.code === 'not_found' || f.err.code === 'sandbox_down') return answer(req, res, f.err, f.html, { 'cache-control': 'no-store' });
      log.warn('preview request failed', { sandbox: rec.id, port, code: f.err.code, error: f.err.message });
      answer(req, res, f.err, f.html, f.headers);
    };
    let to: Awaited<ReturnType<Gateway['address']>>;
    try {
      to = await gw.address(req, res, rec, port);
    } catch (err) {
      // A wake that failed in the runtime (Docker said no) is the sandbox's trouble: 502, as before.
      return fail(failure(err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err)), port)!);
    }
    if (!to) return;
    try {
      await proxyHttp(req, res, { ...to, port }, checked, { queueWaitMs: config.gatewayQueueWaitS * 1000, tls: config.previewTls, maxHeaderBytes: limits.maxHeaderBytes, headersTimeoutMs: limits.upstreamHeadersTimeoutS * 1000, stallMs: limits.clientStallS * 1000 });
    } catch (err) {
      const f = failure(err, port);
      if (!f) throw err;
      if (isUpstreamError(err) && err.code === BAD_UPSTREAM) gw.count('sandboxd_gateway_bad_upstream_total', 'Upstream answers that were not valid HTTP (answered 502).', {});
      if (isUpstreamError(err) && err.code === 'EHOSTUNREACH') upstreams.drop(rec.id, 'unreachable');
      fail(f);
    }
  };

  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutS * 1000,
    requestTimeout: limits.requestTimeoutS * 1000,
    // Slow clients are looked for every second, not every 30 s: the timeouts then hold to about a second.
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      reportUnexpected(log, metrics, 'gateway', err, { host: String(req.headers.host ?? '').slice(0, 200), method: req.method });
      try {
        answer(req, res, new AppError('internal', 'internal error in the preview gateway; it was logged, retry shortly'), wakeFailedPage('internal error; retry shortly'));
      } catch {
        res.destroy();
      }
    });
  });
  // One more than allowed, so that too many is seen (and refused) rather than silently cut.
  server.maxHeadersCount = limits.maxHeaders + 1;
  server.keepAliveTimeout = limits.keepAliveTimeoutS * 1000;

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = answerClientError(err, socket, 'gateway');
    gw.count('sandboxd_gateway_client_errors_total', 'Requests the HTTP parser refused on the gateway (bad framing, oversized headers, slow clients), by answer.', { status: String(status) });
  });
  // CONNECT is not something a preview does: refuse it instead of letting Node drop the socket unanswered.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    gw.count('sandboxd_gateway_refused_requests_total', 'Requests the gateway refused as malformed or ambiguous (4xx, connection closed).', { status: '405' });
    if (!socket.writable) return void socket.destroy();
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    setTimeout(() => socket.destroy(), 5000).unref();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(gw, req, socket as Socket, head));

  const sweep = setInterval(() => {
    try {
      upstreams.sweep((id) => targets.get(id));
    } catch (err) {
      reportUnexpected(log, metrics, 'gateway', err, { in: 'pool sweep' });
    }
  }, SWEEP_MS);
  sweep.unref();
  server.on('close', () => (clearInterval(sweep), upstreams.close()));
  return server;
}
