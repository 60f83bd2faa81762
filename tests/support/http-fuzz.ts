import { connect, type Socket } from 'node:net';

/**
 * A seeded generator of malformed and adversarial HTTP/1.1 requests, listener-agnostic: the caller passes
 * the Host values and paths to aim at. Each request is a script of writes, pauses and closes, run over a raw
 * TCP socket by `runScript`. The same seed replays the same scripts.
 */
export type Step = { write: Buffer } | { wait: number } | { end: true } | { reset: true };
export interface Script {
  kind: string;
  steps: Step[];
  /** Stops part-way on purpose (a stalled client): the server must close it by its own timeout. */
  stalls?: boolean;
}

const CRLF = '\r\n';
const b = (s: string) => Buffer.from(s, 'latin1');

/** Builds malicious requests against `hosts` × `paths` from `random` (tests/support/prng.ts). */
export function maliciousRequests(random: () => number, target: { hosts: string[]; paths: string[] }, n: number): Script[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const host = () => pick(target.hosts);
  const path = () => pick(target.paths);
  const junk = (len: number) => Buffer.from(Array.from({ length: len }, () => int(0, 255)));
  const head = (line: string, headers: string[]) => `${line}${CRLF}${headers.map((h) => `${h}${CRLF}`).join('')}${CRLF}`;
  const req = (method: string, p: string, headers: string[], body = '') => b(head(`${method} ${p} HTTP/1.1`, [`Host: ${host()}`, ...headers]) + body);
  const smuggled = () => `GET /smuggled HTTP/1.1${CRLF}Host: ${host()}${CRLF}${CRLF}`;
  const chunk = (s: string) => `${s.length.toString(16)}${CRLF}${s}${CRLF}0${CRLF}${CRLF}`;
  const one = (buf: Buffer, kind: string): Script => ({ kind, steps: [{ write: buf }, ...(random() < 0.3 ? [{ end: true } as Step] : [])] });

  const generators: (() => Script)[] = [
    // Request lines and targets.
    () => one(b(head(`${pick(['GET', 'POST', 'HEAD', 'OPTIONS', 'get', 'G\u0000T', 'FOO', 'PRI', 'CONNECT', 'TRACE'])} ${pick(['http://[', 'http://[::1', 'http://', 'http:///x', `http://${host()}${path()}`, `https://${host()}/`, 'http://evil.example/', `//${host()}/x`, '*', `${host()}:80`, 'example.com:443', '%', '/%ZZ', '/%00', `/${'a'.repeat(int(1, 20_000))}`, '/a b', '/\u00ff\u00fe', '/?token=%', '/?token=a&token=b', 'x', ''])} ${pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1x', 'http/1.1', 'HTTP/9.9', ''])}`, [`Host: ${host()}`])), 'request-line'),
    () => one(b(`GET ${path()}${CRLF}${CRLF}`), 'http/0.9'),
    // Headers: huge, many, duplicate, invalid.
    () => one(req('GET', path(), [`X-Big: ${'x'.repeat(int(8_000, 70_000))}`]), 'huge-header'),
    () => one(req('GET', path(), Array.from({ length: int(90, 400) }, (_, i) => `X-H${i}: ${i}`)), 'many-headers'),
    () => one(b(head(`GET ${path()} HTTP/1.1`, [`Host: ${host()}`, `Host: ${host()}`])), 'duplicate-host'),
    () => one(b(head(`GET ${path()} HTTP/1.1`, [])), 'no-host'),
    () => one(b(head(`GET ${path()} HTTP/1.1`, [`Host: ${pick(['', ' ', 'a b', 'x@y', '[', '\u00ff', 's-..-3000.preview.localhost', `${host()}:99999`, `${host()}, ${host()}`])}`])), 'bad-host'),
    () => one(req('GET', path(), [pick(['X Y: 1', ': x', 'X-A : 1', 'X\u0000: 1', 'X: a\u0000b', 'X: a\u0001b', 'X: a\u007fb', 'X: \u00ff\u00fe', 'X: a\rb', 'Nocolon', 'X: a', ' X: folded', '\tX: folded'])]), 'bad-header'),
    () => one(b(`GET ${path()} HTTP/1.1${CRLF}Host: ${host()}${CRLF}X: a${CRLF} obs-fold${CRLF}${CRLF}`), 'obs-fold'),
    () => one(b(`GET ${path()} HTTP/1.1\nHost: ${host()}\n\n`), 'bare-lf'),
    () => one(Buffer.concat([b(`GET ${path()} HTTP/1.1${CRLF}Host: ${host()}${CRLF}X-Utf8: `), Buffer.from([0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x92, 0xff]), b(`${CRLF}${CRLF}`)]), 'invalid-utf8'),
    // Framing conflicts and chunk-size games.
    () => one(req('POST', path(), ['Content-Length: 4', 'Transfer-Encoding: chunked'], `0${CRLF}${CRLF}${smuggled()}`), 'cl-te'),
    () => one(req('POST', path(), ['Transfer-Encoding: chunked', 'Content-Length: 40'], chunk(smuggled())), 'te-cl'),
    () => one(req('POST', path(), [`Content-Length: ${pick(['1, 1', '+1', '-1', '0x10', '1 1', '99999999999999999999', ' 1', '1.0', ''])}`], 'x'), 'bad-cl'),
    () => one(req('POST', path(), ['Content-Length: 1', `Content-Length: ${pick(['1', '2'])}`], 'xx'), 'dup-cl'),
    () => one(req(pick(['POST', 'GET']), path(), [`Transfer-Encoding: ${pick(['gzip', 'gzip, chunked', 'chunked, gzip', 'chunked, chunked', 'CHUNKED', ' chunked', 'identity', 'chunked;q=1', 'xchunked', ''])}`], chunk('hello')), 'bad-te'),
    () => one(b(head(`POST ${path()} HTTP/1.0`, [`Host: ${host()}`, 'Transfer-Encoding: chunked']) + chunk(smuggled())), 'te-http10'),
    () => one(req(pick(['GET', 'HEAD', 'DELETE', 'OPTIONS']), path(), ['Transfer-Encoding: chunked'], chunk(smuggled())), 'chunked-bodyless-method'),
    () => one(req('POST', path(), ['Transfer-Encoding: chunked'], `${pick(['FFFFFFFFFFFFFFFFFFFF', '-1', 'zz', '1;' + 'e'.repeat(int(100, 20_000)), '0x5', '5 5', ''])}${CRLF}hello${CRLF}0${CRLF}${CRLF}`), 'chunk-size'),
    () => one(req('POST', path(), ['Transfer-Encoding: chunked'], `5${CRLF}hello${CRLF}0${CRLF}X-Trailer: a\u0001${CRLF}${CRLF}`), 'bad-trailer'),
    () => ({ kind: 'cl-longer-than-body', stalls: true, steps: [{ write: req('POST', path(), [`Content-Length: ${int(10, 100_000)}`], 'short') }] }),
    () => one(req('POST', path(), ['Content-Length: 2'], `abGARBAGE / HTTP/1.1${CRLF}${CRLF}`), 'cl-shorter-than-body'),
    // NUL bytes and binary noise.
    () => one(Buffer.concat([b(pick(['', 'GET ', `GET ${path()} HTTP/1.1${CRLF}`])), junk(int(1, 4096))]), 'binary'),
    () => one(b(`GET ${path()}\u0000 HTTP/1.1${CRLF}Host: ${host()}${CRLF}${CRLF}`), 'nul-target'),
    // Credentials and queries.
    () => one(req('GET', `${path()}?token=${pick(['', 'x', 'a.b', '%ZZ', 'x'.repeat(5000), '..', '\u00ff'])}`, []), 'junk-token'),
    () => one(req('GET', path(), [`Cookie: ${Array.from({ length: int(1, 60) }, () => `sandboxed_preview=${pick(['', 'x', 'a.b', '"q"', '%', 'x'.repeat(300)])}`).join('; ')}`]), 'junk-cookies'),
    () => one(req('GET', path(), [`Authorization: ${pick(['Bearer ', 'Bearer x', 'Basic %%%', `Bearer ${'x'.repeat(9000)}`, 'Bearer \u00ff'])}`]), 'junk-auth'),
    // Upgrades: refused, reset, with bodies.
    () => ({ kind: 'upgrade-reset', steps: [{ write: req('GET', path(), ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']) }, ...(random() < 0.5 ? [{ wait: int(0, 30) } as Step] : []), { reset: true }] }),
    () => one(b(head(`GET ${path()} HTTP/1.1`, [`Host: ${pick(['nope.example', host()])}`, 'Connection: Upgrade', `Upgrade: ${pick(['websocket', 'h2c', '', 'x'.repeat(3000)])}`, ...(random() < 0.3 ? ['Content-Length: 5'] : [])]) + 'hello'), 'upgrade'),
    // Pipelining and early closes.
    () => one(Buffer.concat([req('GET', path(), []), req('GET', path(), []), junk(int(0, 64))]), 'pipelined'),
    () => {
      const whole = req('POST', path(), ['Content-Length: 10'], '0123456789');
      return { kind: 'early-close', steps: [{ write: whole.subarray(0, int(1, whole.length - 1)) }, random() < 0.5 ? { end: true } : { reset: true }] };
    },
  ];
  const slow: (() => Script)[] = [
    () => {
      // A slow drip that does finish: every byte arrives, a few milliseconds apart.
      const whole = req('GET', path(), []);
      const steps: Step[] = [];
      for (let i = 0; i < whole.length;) {
        const len = int(4, 24);
        steps.push({ write: whole.subarray(i, i + len) }, { wait: int(1, 15) });
        i += len;
      }
      return { kind: 'slow-drip', steps };
    },
    // Slowloris: headers that never finish; the server must cut the connection itself.
    () => ({ kind: 'slowloris', stalls: true, steps: [{ write: b(`GET ${path()} HTTP/1.1${CRLF}Host: ${host()}${CRLF}X-A: `) }, { wait: 200 }, { write: b('b') }] }),
    () => ({ kind: 'stalled-body', stalls: true, steps: [{ write: req('POST', path(), ['Content-Length: 100'], 'only part') }] }),
  ];
  return Array.from({ length: n }, () => (random() < 0.04 ? pick(slow) : pick(generators))());
}

/** What one script got back: every byte, and whether the server closed the connection. */
export interface Outcome {
  kind: string;
  bytes: Buffer;
  closed: boolean;
  /** Status codes of the responses received, in order. */
  statuses: number[];
}

/**
 * Runs one script against host:port. Resolves when the server closes, or once a response has arrived and
 * the connection has gone quiet for `quietMs`, or after `maxMs` at the latest (then `closed` is false).
 */
export function runScript(port: number, script: Script, opts: { quietMs?: number; maxMs?: number } = {}): Promise<Outcome> {
  const quietMs = opts.quietMs ?? 300;
  const maxMs = opts.maxMs ?? 15_000;
  return new Promise((resolve) => {
    const sock: Socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closed = false;
    let quiet: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      sock.destroy();
      const bytes = Buffer.concat(chunks);
      const statuses = [...bytes.toString('latin1').matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ kind: script.kind, bytes, closed, statuses });
    };
    const cap = setTimeout(finish, maxMs);
    sock.on('data', (c) => {
      chunks.push(c);
      clearTimeout(quiet);
      quiet = setTimeout(finish, quietMs);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => ((closed = true), finish()));
    sock.once('connect', async () => {
      for (const step of script.steps) {
        if (sock.destroyed) break;
        if ('write' in step) sock.write(step.write);
        else if ('wait' in step) await new Promise((r) => setTimeout(r, step.wait));
        else if ('end' in step) sock.end();
        else if ('reset' in step) {
          sock.resetAndDestroy();
          closed = true;
          return finish();
        }
      }
    });
  });
}

/** Runs `scripts` with at most `concurrency` in flight, answering their outcomes in order. */
export async function runAll(port: number, scripts: Script[], concurrency: number, opts?: { quietMs?: number; maxMs?: number }): Promise<Outcome[]> {
  const out: Outcome[] = new Array(scripts.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, scripts.length) }, async () => {
    while (next < scripts.length) {
      const i = next++;
      out[i] = await runScript(port, scripts[i]!, opts);
    }
  }));
  return out;
}
