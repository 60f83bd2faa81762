import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { reportUnexpected } from '../boundary.ts';
import { AppError, errorEnvelope } from '../errors.ts';
import { answerRaw } from '../http/raw-answer.ts';
import { errorMessage } from '../log.ts';
import { checkRequest } from './framing.ts';
import { isPrivate, previewAccess, stripCredentials } from './private.ts';
import { BAD_UPSTREAM, isUpstreamError, proxyUpgrade } from './proxy.ts';
import type { Gateway } from './server.ts';

/** Answers a refused upgrade on the raw socket (the error envelope, `connection: close`), then lets it go. */
function refuse(socket: Socket, err: AppError, status: number = err.status, extra: Record<string, string> = {}): void {
  answerRaw(socket, status, JSON.stringify(errorEnvelope(err, 'gateway')), extra);
}

/**
 * The gateway's upgrade handler (WebSocket, Vite HMR): the same checks as a request, then the per-sandbox
 * WebSocket cap (429), a lease while it is open, and the byte-for-byte relay. Never throws: an unexpected
 * error is reported and closes this socket only.
 */
export function handleUpgrade(gw: Gateway, req: IncomingMessage, socket: Socket, head: Buffer): void {
  // Node removes its own listeners from an upgraded socket: without this a reset (ECONNRESET/EPIPE) ends the process.
  socket.on('error', () => socket.destroy());
  // The socket still flows but nobody listens: bytes sent early would be lost. They wait until a 101.
  socket.pause();
  const { config, log, metrics } = gw.deps;
  const limits = config.limits.gateway;
  // The whole handshake is bounded: a wake has its own hold time, the app its upgrade timeout.
  const deadline = setTimeout(() => socket.destroy(), (config.wakeHoldS + limits.upgradeTimeoutS + 5) * 1000);
  deadline.unref();
  socket.once('close', () => clearTimeout(deadline));
  run(gw, req, socket, head).catch((err: unknown) => {
    reportUnexpected(log, metrics, 'gateway', err, { in: 'upgrade' });
    socket.destroy();
  }).finally(() => clearTimeout(deadline));
}

async function run(gw: Gateway, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const { config } = gw.deps;
  const limits = config.limits.gateway;
  const checked = checkRequest(req, limits.maxHeaders);
  if (!checked.ok || checked.body !== 'none') {
    gw.count('sandboxd_gateway_refused_requests_total', 'Requests the gateway refused as malformed or ambiguous (4xx, connection closed).', { status: String(checked.ok ? 400 : checked.status) });
    return refuse(socket, new AppError('invalid_request', checked.ok ? 'an upgrade request carries no body' : checked.why), checked.ok ? 400 : checked.status);
  }
  const target = gw.resolve(checked.host);
  if (!target) return refuse(socket, new AppError('not_found', 'there is no preview at this address'));
  const { rec, port } = target;
  if (isPrivate(rec, port)) {
    const access = previewAccess(req, checked.path, rec, port, gw.deps.tokens, gw.deps.auth, config.previewTls);
    if (access.allow !== true) return refuse(socket, new AppError('unauthorized', 'this preview is private: open the page with its preview link first'));
  }
  // Public or private: our API tokens and the preview cookie never reach the app.
  checked.path = stripCredentials(req, checked.path, gw.deps.auth);
  const counts = gw.openWebSockets;
  const n = counts.get(rec.id) ?? 0;
  if (n >= limits.wsPerSandbox) {
    gw.count('sandboxd_gateway_ws_refused_total', 'Preview WebSockets refused because the sandbox already has its maximum open.', {});
    return refuse(socket, new AppError('rate_limited', `this preview already has ${limits.wsPerSandbox} open WebSockets (SANDBOXD_PREVIEW_WS_PER_SANDBOX); close some and retry`), undefined, { 'retry-after': '5' });
  }
  // The slot and the lease are taken only once the app said 101: a refused upgrade holds neither. Handshakes
  // under way are not counted, so the cap can be passed by those few; each is bounded by its deadline.
  const onSwitch = () => {
    counts.set(rec.id, (counts.get(rec.id) ?? 0) + 1);
    // Never throws: a lease the disk refuses is dropped and counted in Activity (the idle reaper may then miss this socket).
    const lease = gw.deps.activity.openLease(rec.id, 'preview_ws');
    const release = () => {
      const left = (counts.get(rec.id) ?? 1) - 1;
      if (left > 0) counts.set(rec.id, left);
      else counts.delete(rec.id);
      lease.release();
    };
    if (socket.destroyed) release();
    else socket.once('close', release);
  };
  let to: Awaited<ReturnType<Gateway['address']>>;
  try {
    to = await gw.address(req, undefined, rec, port);
  } catch (err) {
    const failure = err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err));
    return refuse(socket, failure, undefined, failure.retryAfterS !== undefined ? { 'retry-after': String(failure.retryAfterS) } : {});
  }
  if (!to || socket.destroyed) return void socket.destroy();
  try {
    await proxyUpgrade(req, socket, head, to.host, port, checked, { tls: config.previewTls, timeoutMs: limits.upgradeTimeoutS * 1000, maxHeaderBytes: limits.maxHeaderBytes, onSwitch });
  } catch (err) {
    if (!isUpstreamError(err)) throw err;
    if (err.code === BAD_UPSTREAM) gw.count('sandboxd_gateway_bad_upstream_total', 'Upstream answers that were not valid HTTP (answered 502).', {});
    refuse(socket, new AppError('sandbox_unavailable', err.code === 'ECONNREFUSED' ? `nothing listens on port ${port} in this sandbox yet` : err.message));
  }
}
