import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startDaemon, type Daemon } from '../support/daemon.ts';
import { RemoteClient } from '../support/netns.ts';

const PORT = 4000;
const WS_CAP = 2;
const PER_CLIENT = 3;

/**
 * The app: /hang never answers; /flood streams without end (and counts when its response closes); /quiet is
 * an event stream silent for longer than the stall limit; /drip answers slowly but steadily. Upgrades to
 * /ws-refuse get a 403 on a connection the app keeps open, counting every byte it receives afterwards (a
 * refused upgrade followed by early bytes is a smuggled request); /ws-ok gets a 101 and an echo.
 */
const APP = String.raw`
import http from 'node:http';
const stats = { floodClosed: 0, afterRefusal: 0, refused: 0 };
const server = http.createServer((req, res) => {
  if (req.url === '/stats') return res.end(JSON.stringify(stats));
  if (req.url === '/hang') return;
  if (req.url === '/flood') {
    res.on('close', () => stats.floodClosed++);
    const chunk = Buffer.alloc(65536, 120);
    const pump = () => { while (!res.destroyed && res.write(chunk)); };
    res.on('drain', pump);
    return pump();
  }
  if (req.url === '/quiet') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    return setTimeout(() => res.end('data: late\n\n'), 4500);
  }
  if (req.url === '/drip') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const t = setInterval(() => (++n < 12 ? res.write('.') : (clearInterval(t), res.end('done'))), 500);
    return res.on('close', () => clearInterval(t));
  }
  res.end('ok');
});
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  if (req.url === '/ws-refuse') {
    stats.refused++;
    stats.afterRefusal += head.length;
    socket.on('data', (d) => (stats.afterRefusal += d.length));
    return socket.write('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nno!');
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  socket.on('data', (d) => socket.write(d));
});
server.listen(${PORT}, '0.0.0.0');
`;

/** Raw bytes to the gateway; resolves with what came back once the gateway closed the connection (or `maxMs` passed). */
function raw(port: number, bytes: string, maxMs: number, host = '127.0.0.1'): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let text = '';
    const t = setTimeout(() => (s.destroy(), resolve({ text, closed: false })), maxMs);
    s.on('data', (c) => (text += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => (clearTimeout(t), resolve({ text, closed: true })));
    s.write(bytes);
  });
}

describe('the gateway bounds what slow, silent or refusing parties can hold', () => {
  let d: Daemon;
  let id: string;
  const host = () => `s-${id.toLowerCase()}-${PORT}.preview.localhost`;
  const stats = async () => JSON.parse((await d.gateway(host(), '/stats')).body) as { floodClosed: number; afterRefusal: number; refused: number };
  const upgrade = (path: string, early = '') => `GET ${path} HTTP/1.1\r\nHost: ${host()}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n${early}`;

  beforeAll(async () => {
    d = await startDaemon({
      env: {
        SANDBOXD_IMAGE: 'sandboxed/sandbox:latest', SANDBOXD_DEFAULT_MEMORY_MB: '512', SANDBOXD_PREVIEW_WS_PER_SANDBOX: String(WS_CAP),
        SANDBOXD_GATEWAY_UPGRADE_TIMEOUT_S: '5', SANDBOXD_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_S: '2', SANDBOXD_GATEWAY_CLIENT_STALL_S: '2',
        SANDBOXD_GATEWAY_REQUESTS_PER_CLIENT: String(PER_CLIENT),
      },
    });
    id = (await d.api('POST', '/v1/sandboxes', { ports: [PORT] })).body.id;
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'slow-app.mjs', content: APP });
    await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['node', '/home/sandbox/workspace/app/slow-app.mjs'], detach: true });
    expect(await eventually(async () => (await d.gateway(host(), '/ready').catch(() => ({ status: 0 }))).status === 200, 20_000)).toBe(true);
  });
  afterAll(() => d?.cleanup());

  it('relays a refused upgrade, closes it, never sends the early bytes upstream, and holds no WebSocket slot for it', async () => {
    const refusals = await Promise.all(Array.from({ length: WS_CAP + 1 }, () => raw(d.gatewayPort, upgrade('/ws-refuse', `GET /smuggled HTTP/1.1\r\nHost: ${host()}\r\n\r\n`), 15_000)));
    for (const r of refusals) {
      expect(r.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n[^]*connection: close\r\n\r\nno!$/);
      expect(r.closed).toBe(true);
    }
    expect((await stats())).toMatchObject({ refused: WS_CAP + 1, afterRefusal: 0 });
    // All slots free: a real WebSocket still opens and echoes.
    const ok = await new Promise<string>((resolve) => {
      const s: Socket = connect({ host: '127.0.0.1', port: d.gatewayPort });
      let text = '';
      s.on('error', () => resolve(text));
      s.on('data', (c) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n') && !text.includes('ping')) s.write('ping');
        if (text.endsWith('ping')) (s.destroy(), resolve(text));
      });
      setTimeout(() => (s.destroy(), resolve(text)), 10_000);
      s.write(upgrade('/ws-ok'));
    });
    expect(ok).toMatch(/^HTTP\/1\.1 101 [^]*\r\n\r\nping$/);
  });

  it('answers 504 when the app never sends its response head', async () => {
    const r = await raw(d.gatewayPort, `GET /hang HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`, 20_000);
    expect(r.text).toMatch(/^HTTP\/1\.1 504 [^]*"code":"gateway_timeout"[^]*SANDBOXD_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_S/);
  });

  it('ends a response whose client stopped reading, freeing its upstream, but keeps a stream that is merely quiet', async () => {
    const before = (await stats()).floodClosed;
    const stuck = connect({ host: '127.0.0.1', port: d.gatewayPort });
    stuck.on('error', () => undefined);
    stuck.write(`GET /flood HTTP/1.1\r\nHost: ${host()}\r\n\r\n`);
    stuck.pause();
    try {
      // The app sees its response closed once the gateway gave up on the client (2 s of no reading, plus buffers).
      expect(await eventually(async () => (await stats()).floodClosed > before, 30_000, 500)).toBe(true);
    } finally {
      stuck.destroy();
    }
    // Silent for 4.5 s (over the 2 s stall limit), but nothing waits for the client: it gets the late event.
    const quiet = await d.gateway(host(), '/quiet');
    expect(quiet.body).toBe('data: first\n\ndata: late\n\n');
  });

  it('caps in-flight requests per client address and port with 429 + Retry-After; loopback is exempt', async () => {
    const remote = await new RemoteClient().create();
    try {
      // From a network namespace the test makes (a non-loopback peer): PER_CLIENT slow /drip requests (6 s
      // each) hold the address's share, the next request is refused, and once they end it is served again.
      const fromRemote = remote.node<{ over: { status: number; retryAfter?: string }; drips: number[]; after: number }>(`
        const http = require('node:http');
        const get = (path) => new Promise((resolve) => {
          const req = http.request({ host: '${remote.hostAddress}', port: ${d.gatewayPort}, path, headers: { host: '${host()}' }, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] }));
          });
          req.on('error', () => resolve({ status: 0 }));
          req.end();
        });
        (async () => {
          const held = Array.from({ length: ${PER_CLIENT} }, () => get('/drip'));
          await new Promise((r) => setTimeout(r, 1500));
          const over = await get('/ok');
          const drips = (await Promise.all(held)).map((r) => r.status);
          const after = (await get('/ok')).status;
          console.log(JSON.stringify({ over, drips, after }));
        })();`);
      await new Promise((r) => setTimeout(r, 2000));
      expect((await d.gateway(host(), '/ok')).status).toBe(200); // loopback, meanwhile
      const r = await fromRemote;
      expect(r.over).toEqual({ status: 429, retryAfter: '2' });
      expect(r.drips).toEqual(Array(PER_CLIENT).fill(200));
      expect(r.after).toBe(200);
      expect(d.output).not.toMatch(/unhandled|uncaught|unexpected error/i);
    } finally {
      await remote.remove();
    }
  });
});
