import { request, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostOnlyCookies } from './cookies.ts';
import { checkResponseFraming, checkResponseHead, endToEnd, forwardedHeaders, HOP_BY_HOP, parseResponseHead, type Checked, upstreamRequestHeaders } from './framing.ts';

/** The error code of a request that waited too long for an upstream connection. */
export const UPSTREAM_BUSY = 'ESANDBOXBUSY';
/** The error code of an upstream answer that is not valid HTTP (the client gets 502 for it). */
export const BAD_UPSTREAM = 'EBADUPSTREAM';
/** The error code of a request the app did not answer (no response headers) in time (the client gets 504). */
export const UPSTREAM_TIMEOUT = 'ESANDBOXTIMEOUT';

/** How long an upgraded connection may stay half-closed (one side ended) before both are closed. */
const HALF_OPEN_MS = 1000;

/** 1xx answers before the real one: more than this is a flood, and the request ends with 502. */
const MAX_INFORMATIONAL = 32;

/** Marks an error as the upstream's fault (a connection or protocol failure), not the gateway's. */
export type UpstreamError = NodeJS.ErrnoException & { upstream: true };
const upstreamError = (err: Error): UpstreamError => Object.assign(err, { upstream: true as const });
const bad = (why: string) => upstreamError(Object.assign(new Error(`the app's answer is not valid HTTP: ${why}`), { code: BAD_UPSTREAM }));

/** True when `err` came from the upstream (its connection or its answer). */
export const isUpstreamError = (err: unknown): err is UpstreamError => !!err && typeof err === 'object' && (err as { upstream?: unknown }).upstream === true;

type Ok = Extract<Checked, { ok: true }>;

/** Where a request goes: the sandbox's address and port, through its own pool. */
export interface UpstreamTarget {
  host: string;
  port: number;
  agent: Agent;
}

/**
 * Streams one request to the sandbox and the answer back, bodies in both directions as they come. The body
 * is framed explicitly upstream (Content-Length or chunked, whatever the method), or not sent at all. The
 * answer is validated before anything reaches the client. Rejects (with an UpstreamError) only while
 * nothing has been sent to the client yet, so the caller can answer 502/503; later failures end only this
 * response. The app has `headersTimeoutMs` from the end of the request to its response head; a client that
 * reads none of the bytes waiting for it for `stallMs` has its response ended (a stream that is merely
 * quiet has nothing waiting, so it is no stall). No event handler here can throw into the event loop:
 * the ones that write to the client catch what a write throws.
 */
export function proxyHttp(req: IncomingMessage, res: ServerResponse, to: UpstreamTarget, checked: Ok, opts: { queueWaitMs: number; tls: boolean; maxHeaderBytes: number; headersTimeoutMs: number; stallMs: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let responded = false;
    // One timer at a time: the wait for a pooled socket, then for the answer's head, then a client's stall.
    let timer: NodeJS.Timeout | undefined;
    let stalled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      upstream.destroy();
      if (!res.headersSent) return reject(isUpstreamError(err) ? err : upstreamError(err));
      if (!res.writableEnded) res.destroy();
      resolve();
    };
    const relayFailed = (err: unknown) => fail(bad(`it could not be relayed (${(err as Error).message})`));

    const upstream: ClientRequest = request({ host: to.host, port: to.port, method: req.method, path: checked.path, headers: upstreamRequestHeaders(req, checked, opts.tls).flat(), agent: to.agent, maxHeaderSize: opts.maxHeaderBytes });
    // Waiting behind 64 open requests (long-lived ones, or someone holding them open) has a limit too. A
    // request still queued in the agent reports its destruction only once it gets a socket: settle at once.
    timer = setTimeout(() => fail(upstreamError(Object.assign(new Error('every upstream connection to this preview is busy'), { code: UPSTREAM_BUSY }))), opts.queueWaitMs);
    upstream.once('socket', () => clearTimeout(timer));
    // The agent's own `timeout` only closes idle pooled sockets; waiting for an answer has this limit.
    upstream.once('finish', () => {
      if (!responded && !settled) timer = setTimeout(() => fail(upstreamError(Object.assign(new Error(`the app did not answer within ${opts.headersTimeoutMs / 1000} s`), { code: UPSTREAM_TIMEOUT }))), opts.headersTimeoutMs);
    });
    let informational = 0;
    upstream.on('information', () => {
      if (++informational > MAX_INFORMATIONAL) fail(bad(`more than ${MAX_INFORMATIONAL} 1xx answers`));
    });
    // 101 to a request that asked for no upgrade: Node hands over the socket; nobody may use it.
    upstream.on('upgrade', (_res: IncomingMessage, socket: Duplex) => {
      socket.destroy();
      fail(bad('101 Switching Protocols to a request that asked for no upgrade'));
    });
    upstream.on('response', (up: IncomingMessage) => {
      responded = true;
      clearTimeout(timer);
      // Already answered (a 1xx flood, a timeout) while the parser went on to this response: it goes nowhere.
      if (settled) return void up.destroy();
      let headers: [string, string][];
      try {
        headers = endToEnd(up.rawHeaders);
        const why = checkResponseFraming(up.rawHeaders) ?? checkResponseHead(up.statusCode, up.statusMessage, headers);
        if (why) return fail(bad(why));
        hostOnlyCookies(headers);
      } catch (err) {
        return relayFailed(err);
      }
      // The head goes out with the first bytes of the body (as Node would send it anyway): an answer that
      // breaks before any of its body can still become a clean 502.
      let headWritten = false;
      const head = () => {
        if (!headWritten) res.writeHead(up.statusCode!, up.statusMessage ?? '', headers.flat());
        headWritten = true;
      };
      up.on('error', () => fail(upstreamError(new Error('the app broke off its answer'))));
      up.on('end', () => {
        try {
          head();
          res.end();
        } catch (err) {
          return relayFailed(err);
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
      up.on('close', () => {
        // Closed before its end: the client must see a broken response, not a short one that looks whole.
        if (!up.complete) fail(upstreamError(new Error('the app broke off its answer')));
      });
      up.on('data', (chunk: Buffer) => {
        try {
          head();
          if (res.write(chunk) || stalled) return;
        } catch (err) {
          return relayFailed(err);
        }
        up.pause();
        // Bytes are waiting and the client reads none: past the limit, this response ends and frees its upstream socket.
        stalled = true;
        timer = setTimeout(() => fail(new Error('the client stopped reading')), opts.stallMs);
      });
      res.on('drain', () => {
        if (!stalled) return;
        stalled = false;
        clearTimeout(timer);
        up.resume();
      });
    });
    upstream.on('error', fail);
    upstream.on('close', () => {
      if (!responded) fail(bad('it closed the connection without answering'));
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    });
    // A client that goes away mid-body must not leave a half-sent body upstream.
    if (checked.body === 'none') return void upstream.end();
    const gone = () => upstream.destroy();
    req.on('error', gone);
    req.on('aborted', gone);
    req.pipe(upstream);
  });
}

/** Headers of a 101 that go on to the client: end-to-end ones plus the upgrade's own Connection and Upgrade. */
function switchingHeaders(headers: [string, string][]): [string, string][] {
  return headers.filter(([n]) => { const l = n.toLowerCase(); return l === 'connection' || l === 'upgrade' || !HOP_BY_HOP.has(l); });
}

/** How long a refused upgrade's answer may take to reach the client before both sockets are closed. */
const REFUSED_LINGER_MS = 2000;
/** At most this much of a refused upgrade's body is relayed (it is an error page, not a stream). */
const REFUSED_MAX_BODY = 1 << 20;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Passes a connection upgrade (WebSocket) through: the request goes upstream with its Connection/Upgrade and
 * the gateway's forwarding headers, the answer's head is read and validated (1xx skipped, bounded). Only
 * after a 101 do the client's bytes (`head` and the rest) go upstream and `onSwitch` run: early bytes sent
 * to an app that then refuses would be a second, unchecked request. Any other answer goes to the client
 * with `connection: close`, then both sockets close. Rejects with an UpstreamError while nothing has been
 * written to the client; the whole handshake has `timeoutMs`.
 */
export function proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, host: string, port: number, checked: Ok, opts: { tls: boolean; timeoutMs: number; maxHeaderBytes: number; onSwitch: () => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    // Nothing from the client is read (nor relayed) until the app has said 101.
    client.pause();
    const upstream = connect({ host, port });
    let state: 'handshake' | 'piping' | 'refused' | 'done' = 'handshake';
    // The answer's head is reassembled from chunks; only new bytes (plus 3 of overlap) are searched.
    let chunks: Buffer[] = [];
    let size = 0;
    let tail = Buffer.alloc(0);
    let informational = 0;
    const fail = (err: Error) => {
      if (state !== 'handshake') return void client.destroy();
      state = 'done';
      clearTimeout(timer);
      upstream.destroy();
      reject(isUpstreamError(err) ? err : upstreamError(err));
    };
    const timer = setTimeout(() => fail(bad('no answer to the upgrade in time')), opts.timeoutMs);
    upstream.on('error', (err) => fail(err));
    upstream.on('close', () => {
      if (state === 'handshake') return fail(bad('it closed the connection without answering the upgrade'));
      // A refused upgrade's answer is flushed before the client goes (its timer destroys it if it never reads).
      if (state === 'refused') return void client.end();
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.once('connect', () => {
      const headers = [...endToEnd(req.rawHeaders, new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'content-length'])), ...forwardedHeaders(req, checked.host, opts.tls)];
      headers.push(['Connection', 'Upgrade'], ['Upgrade', String(req.headers.upgrade ?? 'websocket')]);
      upstream.write(`${req.method} ${checked.path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
    /** Relays at most the refused answer's body (its Content-Length, else what comes in time), then closes both. */
    const refuseAfter = (rest: Buffer, headers: [string, string][]) => {
      state = 'refused';
      const cl = headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
      let left = cl !== undefined && /^\d{1,15}$/.test(cl.trim()) ? Math.min(Number(cl), REFUSED_MAX_BODY) : REFUSED_MAX_BODY;
      const close = () => (client.destroy(), upstream.destroy());
      setTimeout(close, REFUSED_LINGER_MS).unref();
      const relay = (chunk: Buffer) => {
        const part = chunk.subarray(0, left);
        left -= part.length;
        if (part.length) client.write(part);
        if (left <= 0) {
          upstream.off('data', relay);
          upstream.destroy();
          client.end();
        }
      };
      upstream.on('data', relay);
      relay(rest);
    };
    const onData = (chunk: Buffer) => {
      try {
        const probe = tail.length ? Buffer.concat([tail, chunk]) : chunk;
        chunks.push(chunk);
        size += chunk.length;
        if (probe.indexOf(CRLFCRLF) < 0) {
          if (size > opts.maxHeaderBytes) fail(bad('the answer to the upgrade has too large a head'));
          tail = Buffer.from(probe.subarray(Math.max(0, probe.length - 3)));
          return;
        }
        let buf = Buffer.concat(chunks, size);
        for (;;) {
          const end = buf.indexOf(CRLFCRLF);
          if (end < 0) {
            if (buf.length > opts.maxHeaderBytes) return fail(bad('the answer to the upgrade has too large a head'));
            chunks = [buf];
            size = buf.length;
            tail = Buffer.from(buf.subarray(Math.max(0, buf.length - 3)));
            return;
          }
          if (end > opts.maxHeaderBytes) return fail(bad('the answer to the upgrade has too large a head'));
          const parsed = parseResponseHead(buf.subarray(0, end).toString('latin1'));
          if (typeof parsed === 'string') return fail(bad(parsed));
          buf = buf.subarray(end + 4);
          if (parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
            if (++informational > MAX_INFORMATIONAL) return fail(bad(`more than ${MAX_INFORMATIONAL} 1xx answers`));
            continue;
          }
          const switching = parsed.status === 101;
          const out = switching ? switchingHeaders(parsed.headers) : [...endToEnd(parsed.headers.flat()), ...parsed.headers.filter(([n]) => /^(transfer-encoding)$/i.test(n)), ['connection', 'close'] as [string, string]];
          hostOnlyCookies(out);
          upstream.off('data', onData);
          clearTimeout(timer);
          client.write(`HTTP/1.1 ${parsed.status} ${parsed.reason}\r\n${out.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
          chunks = [];
          if (!switching) {
            // Refused: the client's early bytes are dropped, never relayed (the app would parse them as a request).
            refuseAfter(buf, parsed.headers);
            return resolve();
          }
          state = 'piping';
          opts.onSwitch();
          if (buf.length) client.write(buf);
          upstream.pipe(client);
          if (head.length) upstream.write(head);
          client.pipe(upstream);
          // Sockets here allow half-open connections: once one side has ended, an app (or a client) that never
          // ends its own would hold the pair, its lease and its WebSocket slot for ever.
          const linger = () => setTimeout(() => (client.destroy(), upstream.destroy()), HALF_OPEN_MS).unref();
          client.once('end', linger);
          upstream.once('end', linger);
          return resolve();
        }
      } catch (err) {
        fail(bad(`it could not be relayed (${(err as Error).message})`));
      }
    };
    upstream.on('data', onData);
  });
}
