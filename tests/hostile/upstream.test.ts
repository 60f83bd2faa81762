import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startDaemon, type Daemon } from '../support/daemon.ts';
import { runAll, type Script } from '../support/http-fuzz.ts';
import { prng } from '../support/prng.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 5);
const N = 520;
const PORT = 4000;

/**
 * The hostile app: a raw TCP server in the sandbox that answers `/case/<n>` with corpus entry n, byte for
 * byte, then closes (`close`), keeps dripping header lines forever (`drip`), or waits for the client.
 */
const APP = String.raw`
import net from 'node:net';
import fs from 'node:fs';
const corpus = JSON.parse(fs.readFileSync(new URL('./corpus.json', import.meta.url), 'utf8'));
const fallback = { chunks: ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'], mode: 'close' };
net.createServer((s) => {
  s.on('error', () => {});
  let buf = '';
  const onData = (d) => {
    buf += d.toString('latin1');
    if (buf.indexOf('\r\n\r\n') < 0) return;
    s.off('data', onData);
    s.on('data', () => {});
    const m = /^\S+ \/case\/(\d+)/.exec(buf);
    const c = (m && corpus[Number(m[1])]) || fallback;
    for (const ch of c.chunks) s.write(Buffer.from(ch, 'latin1'));
    if (c.mode === 'close') s.end();
    else if (c.mode === 'drip') {
      const t = setInterval(() => (s.writable ? s.write('X-Drip: ' + 'd'.repeat(1000) + '\r\n') : clearInterval(t)), 5);
      s.on('close', () => clearInterval(t));
    } else if (c.mode === 'afterBody') s.on('end', () => s.end());
  };
  s.on('data', onData);
}).listen(${PORT}, '0.0.0.0');
`;

/** What the client must see: exactly 502, exactly this status, or (a response cut short) 502 or this status. */
type Expect = { bad: true } | { status: number; body?: string } | { broken: number };
interface Entry {
  name: string;
  chunks: string[];
  mode: 'close' | 'drip' | 'afterBody' | 'hold';
  expect: Expect;
  client?: 'post' | 'upgrade';
}

const CTL = [0, 1, 8, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f].map((c) => String.fromCharCode(c));

/** A seeded corpus of broken (and a few valid, as controls) upstream answers. */
function corpus(random: () => number, n: number): Entry[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const ok = (head: string, body = 'ok') => `${head}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
  const gens: (() => Entry)[] = [
    () => { const s = String(int(0, 99)).padStart(3, '0'); return { name: `status ${s}`, chunks: [ok(`HTTP/1.1 ${s} x`)], mode: 'close', expect: { bad: true } }; },
    () => { const s = String(int(1000, 99999)); return { name: `status ${s}`, chunks: [ok(`HTTP/1.1 ${s} x`)], mode: 'close', expect: { bad: true } }; },
    () => ({ name: 'control char in reason', chunks: [ok(`HTTP/1.1 200 O${pick(CTL)}K`)], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'control char in header value', chunks: [ok(`HTTP/1.1 200 OK\r\nX-Bad: a${pick(CTL)}b`)], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'invalid header name', chunks: [ok(`HTTP/1.1 200 OK\r\n${pick(['X Y', 'X\u0000', '(x)', 'X@', 'ä'])}: 1`)], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'CL with TE', chunks: [`HTTP/1.1 200 OK\r\ncontent-length: ${int(0, 9)}\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n`], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'two different CL', chunks: [`HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: ${int(3, 9)}\r\n\r\nokokokokok`], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'TE not chunked', chunks: [`HTTP/1.1 200 OK\r\ntransfer-encoding: ${pick(['chunked, gzip', 'xchunked', 'chunked, chunked'])}\r\n\r\n2\r\nok\r\n0\r\n\r\n`], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'truncated chunk', chunks: [`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${pick(['10\r\nshort', '5\r\nhel', '5\r\nhello\r\n', 'zz\r\n', 'FFFFFFFFFFFFFFFFFFFF\r\nx'])}`], mode: 'close', expect: { broken: 200 } }),
    () => ({ name: 'body shorter than CL', chunks: [`HTTP/1.1 200 OK\r\ncontent-length: ${int(10, 100000)}\r\n\r\nshort`], mode: 'close', expect: { broken: 200 } }),
    () => ({ name: 'huge header', chunks: [ok(`HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(int(17_000, 200_000))}`)], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'never-ending headers', chunks: ['HTTP/1.1 200 OK\r\n'], mode: 'drip', expect: { bad: true } }),
    () => ({ name: 'early close', chunks: [pick(['', 'HTTP/1.', 'HTTP/1.1 200', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\ncontent-le'])], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'garbage', chunks: [pick(['XYZ\r\n\r\n', '\u0000\u0000\u0000', 'ICY 200 OK\r\n\r\n', 'HTTP/2 200\r\n\r\n', 'HTTP/1.1 OK\r\n\r\n'])], mode: 'close', expect: { bad: true } }),
    () => ({ name: 'response before the request body', chunks: [ok('HTTP/1.1 201 Early', 'early')], mode: 'afterBody', expect: { status: 201, body: 'early' }, client: 'post' }),
    () => { const k = int(33, 400); return { name: `flood of ${k} 1xx`, chunks: ['HTTP/1.1 100 Continue\r\n\r\n'.repeat(k) + ok('HTTP/1.1 200 OK')], mode: 'close', expect: { bad: true } }; },
    () => { const k = int(1, 8); return { name: `${k} 103s then 200`, chunks: ['HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'.repeat(k) + ok('HTTP/1.1 200 OK', 'after-hints')], mode: 'close', expect: { status: 200, body: 'after-hints' } }; },
    () => ({ name: '101 to a plain request', chunks: ['HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nraw-bytes'], mode: pick(['close', 'hold'] as const), expect: { bad: true } }),
    () => { const s = pick([299, 418, 599, 999, int(200, 999)]); return { name: `unusual valid status ${s}`, chunks: [ok(`HTTP/1.1 ${s} Fine`)], mode: 'close', expect: { status: s, body: 'ok' } }; },
    () => ({ name: 'refused upgrade', chunks: [ok('HTTP/1.1 403 Forbidden', 'no!')], mode: 'close', expect: { status: 403, body: 'no!' }, client: 'upgrade' }),
    () => ({ name: 'garbage answer to an upgrade', chunks: [pick(['XYZ\r\n\r\n', 'HTTP/1.1 099 x\r\n\r\n', 'HTTP/1.1 101 O\u0001K\r\n\r\n', 'HTTP/1.1 101 OK\r\nX: a\u0000\r\n\r\n', '', 'HTTP/1.1 101 OK\r\n folded\r\n\r\n'])], mode: 'close', expect: { bad: true }, client: 'upgrade' }),
    () => ({ name: 'silence after an upgrade request', chunks: [], mode: 'hold', expect: { bad: true }, client: 'upgrade' }),
    () => ({ name: 'accepted upgrade', chunks: ['HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nframes'], mode: 'close', expect: { status: 101, body: 'frames' }, client: 'upgrade' }),
    () => ({ name: 'control', chunks: [ok('HTTP/1.1 200 OK', 'fine')], mode: 'close', expect: { status: 200, body: 'fine' } }),
  ];
  return Array.from({ length: n }, () => pick(gens)());
}

describe('a hostile upstream', () => {
  let d: Daemon;
  let id: string;
  const host = () => `s-${id.toLowerCase()}-${PORT}.preview.localhost`;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_IMAGE: 'sandboxed/sandbox:latest', SANDBOXD_DEFAULT_MEMORY_MB: '512', SANDBOXD_GATEWAY_UPGRADE_TIMEOUT_S: '3' } });
    id = (await d.api('POST', '/v1/sandboxes', { ports: [PORT] })).body.id;
  });
  afterAll(() => d?.cleanup());

  it(`answers each of ${N} broken app responses with 502 or the response, and stays up (seed ${SEED})`, async () => {
    const entries = corpus(prng(SEED), N);
    expect((await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'corpus.json', content: JSON.stringify(entries) })).status).toBeLessThan(300);
    expect((await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'hostile-app.mjs', content: APP })).status).toBeLessThan(300);
    expect((await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['node', '/home/sandbox/workspace/app/hostile-app.mjs'], detach: true })).status).toBeLessThan(300);
    expect(await eventually(async () => (await d.gateway(host(), '/health').catch(() => ({ status: 0 }))).status === 200, 20_000)).toBe(true);
    const pid = d.proc.pid;

    const scripts: Script[] = entries.map((e, i) => {
      const common = `Host: ${host()}\r\nConnection: close\r\n`;
      const raw = e.client === 'post'
        ? `POST /case/${i} HTTP/1.1\r\n${common}Content-Length: 200000\r\n\r\n${'b'.repeat(200_000)}`
        : e.client === 'upgrade'
          ? `GET /case/${i} HTTP/1.1\r\nHost: ${host()}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
          : `GET /case/${i} HTTP/1.1\r\n${common}\r\n`;
      return { kind: e.name, steps: [{ write: Buffer.from(raw, 'latin1') }] };
    });
    // Wait for the gateway to close each connection (a hang is a failure), at most 20 s.
    const outcomes = await runAll(d.gatewayPort, scripts, 25, { quietMs: 20_000, maxMs: 20_000 });
    const failures: string[] = [];
    outcomes.forEach((o, i) => {
      const e = entries[i]!;
      const text = o.bytes.toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      const what = `#${i} ${e.name}: got ${JSON.stringify(text.slice(0, 160) + text.slice(-200))}${o.closed ? '' : ' (never closed)'}`;
      if (!o.closed && !('status' in e.expect && e.expect.status === 101)) failures.push(what);
      else if ('bad' in e.expect) {
        if (status !== 502) failures.push(what);
      } else if ('broken' in e.expect) {
        if (status !== 502 && status !== e.expect.broken) failures.push(what);
      } else if (status !== e.expect.status || (e.expect.body !== undefined && !body.includes(e.expect.body))) failures.push(what);
      // 1xx are the gateway's business with the app, never forwarded.
      if (/HTTP\/1\.1 1(0[02-9]|[1-9]\d)/.test(text)) failures.push(`${what} (a 1xx was forwarded)`);
    });
    expect(failures.slice(0, 15)).toEqual([]);
    expect(new Set(entries.map((e) => e.name.replace(/\d+/g, 'N'))).size).toBeGreaterThan(20);
    expect(d.proc.exitCode).toBeNull();
    expect(d.proc.pid).toBe(pid);
    expect((await d.gateway(host(), '/health')).status).toBe(200);
    expect(d.output.match(/.*(unhandled|uncaught|unexpected error).*/i)?.[0]).toBeUndefined();
    expect((await d.api('GET', '/metrics')).text).toMatch(/sandboxd_gateway_bad_upstream_total \d+/);
  }, 170_000);
});
