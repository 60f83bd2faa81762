import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

/** Headers that belong to one connection, not to the request (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The error code of a request that waited too long for an upstream connection. */
export const UPSTREAM_BUSY = 'ESANDBOXBUSY';

/**
 * One pool of upstream connections for every sandbox: keep-alive saves a TCP handshake per request. At most
 * 64 connections per sandbox port at once, the rest wait their turn here: a burst at a just-woken app
 * (200 requests held during a wake) would otherwise overflow a small accept queue (busybox httpd's is 9),
 * and every dropped connect costs seconds of SYN retries. Long-lived responses (SSE) count against the 64;
 * WebSockets do not (they are proxied outside this pool).
 */
export const upstreamAgent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 60_000 });

function forwarded(req: IncomingMessage): Record<string, string> {
  const prior = req.headers['x-forwarded-for'];
  const client = req.socket.remoteAddress ?? '';
  return {
    'x-forwarded-for': prior ? `${prior}, ${client}` : client,
    'x-forwarded-host': req.headers.host ?? '',
    'x-forwarded-proto': (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http',
  };
}

/** Pairs of [name, value] from raw headers, without hop-by-hop ones (and without names in `drop`). */
function endToEnd(raw: string[], drop: Set<string> = new Set()): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !drop.has(name)) out.push([raw[i]!, raw[i + 1]!]);
  }
  return out;
}

/**
 * Streams one request to ip:port and the answer back, bodies in both directions as they come. Settles
 * with the upstream error when nothing has been sent to the client yet (so the caller can answer).
 */
export function proxyHttp(req: IncomingMessage, res: ServerResponse, ip: string, port: number, queueWaitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const fwd = forwarded(req);
    const headers = [...endToEnd(req.rawHeaders, new Set(Object.keys(fwd))), ...Object.entries(fwd)];
    const upstream = request({ host: ip, port, method: req.method, path: req.url, headers: headers.flat(), agent: upstreamAgent });
    // Waiting behind 64 open requests (long-lived ones, or someone holding them open) has a limit too. A
    // request still queued in the agent reports its destruction only once it gets a socket: reject at once.
    let gaveUp = false;
    const queued = setTimeout(() => {
      gaveUp = true;
      upstream.destroy();
      reject(Object.assign(new Error('every upstream connection to this preview is busy'), { code: UPSTREAM_BUSY }));
    }, queueWaitMs);
    upstream.once('socket', () => clearTimeout(queued));
    upstream.once('close', () => clearTimeout(queued));
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEnd(up.rawHeaders).flat());
      up.pipe(res);
      up.on('end', () => resolve());
      up.on('error', () => (res.destroy(), resolve()));
    });
    upstream.on('error', (err) => {
      if (gaveUp) return;
      if (res.headersSent) return (res.destroy(), resolve());
      reject(err);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
}

/** Passes a connection upgrade (WebSocket) through: the original request goes upstream, then bytes flow both ways. */
export function proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const upstream = connect({ host: ip, port });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      const fwd = forwarded(req);
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        if (!(req.rawHeaders[i]!.toLowerCase() in fwd)) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      for (const [k, v] of Object.entries(fwd)) lines.push(`${k}: ${v}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      resolve();
    });
    upstream.once('error', (err) => (connected ? client.destroy() : reject(err)));
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
}
