import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';
import { runScript } from '../support/http-fuzz.ts';

const PORT = 4000;
const LOG = '/home/sandbox/workspace/app/requests.log';

/** The app: Node's own HTTP server on long keep-alive, logging every request it parses, then naming it in its answer. */
const APP = String.raw`
import http from 'node:http';
import fs from 'node:fs';
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('latin1');
    fs.appendFileSync('${LOG}', JSON.stringify({ method: req.method, url: req.url, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, body, headers: req.rawHeaders }) + '\n');
    const text = 'you asked for ' + req.method + ' ' + req.url;
    // /hop answers with hop-by-hop headers of its own, which must not reach the client.
    const hop = req.url === '/hop' ? { connection: 'x-app-hop', 'x-app-hop': 'secret', 'keep-alive': 'timeout=99', 'proxy-connection': 'x', upgrade: 'h2c' } : {};
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), ...hop });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
});
server.keepAliveTimeout = 120000;
// WebSocket-ish: accept every upgrade and echo bytes back.
server.on('upgrade', (req, socket) => {
  socket.on('error', () => {});
  socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  socket.on('data', (d) => socket.write(d));
});
server.listen(${PORT}, '0.0.0.0');
`;

const CRLF = '\r\n';
const chunked = (s: string) => `${s.length.toString(16)}${CRLF}${s}${CRLF}0${CRLF}${CRLF}`;

describe('request smuggling through the gateway', () => {
  let d: Daemon;
  let id: string;
  const host = () => `s-${id.toLowerCase()}-${PORT}.preview.localhost`;
  const smuggled = () => `GET /smuggled HTTP/1.1${CRLF}Host: ${host()}${CRLF}${CRLF}`;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_IMAGE: 'sandboxed/sandbox:latest', SANDBOXD_DEFAULT_MEMORY_MB: '512', SANDBOXD_PREVIEW_WS_PER_SANDBOX: '4' } });
    id = (await d.api('POST', '/v1/sandboxes', { ports: [PORT] })).body.id;
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'smuggle-app.mjs', content: APP });
    await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['node', '/home/sandbox/workspace/app/smuggle-app.mjs'], detach: true });
    expect(await eventually(async () => (await d.gateway(host(), '/ready').catch(() => ({ status: 0 }))).status === 200, 20_000)).toBe(true);
  });
  afterAll(() => d?.cleanup());

  it('never delivers a second request to the app, and every next visitor on the pooled connection gets its own answer', async () => {
    const attacks: { name: string; raw: string; refused?: boolean; body?: string }[] = [
      ...['GET', 'HEAD', 'DELETE', 'OPTIONS'].map((m) => ({ name: `chunked ${m}`, raw: `${m} /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}${chunked(smuggled())}`, body: smuggled() })),
      ...['GET', 'DELETE'].map((m) => ({ name: `chunked ${m}, CHUNKED spelling`, raw: `${m} /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: CHUNKED${CRLF}${CRLF}${chunked(smuggled())}`, body: smuggled() })),
      { name: 'Content-Length GET', raw: `GET /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Content-Length: ${smuggled().length}${CRLF}${CRLF}${smuggled()}`, body: smuggled() },
      { name: 'CL.TE', raw: `POST /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Content-Length: 5${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}0${CRLF}${CRLF}${smuggled()}`, refused: true },
      { name: 'TE.CL', raw: `POST /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: chunked${CRLF}Content-Length: 4${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'TE.TE (chunked, then junk)', raw: `POST /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: chunked${CRLF}Transfer-Encoding: x${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'TE gzip, chunked', raw: `GET /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: gzip, chunked${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'TE on HTTP/1.0', raw: `POST /attack HTTP/1.0${CRLF}Host: ${host()}${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'TE with a space before the colon', raw: `GET /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Transfer-Encoding : chunked${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'duplicate Content-Length', raw: `POST /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Content-Length: 0${CRLF}Content-Length: ${smuggled().length}${CRLF}${CRLF}${smuggled()}`, refused: true },
      { name: 'obs-folded TE', raw: `GET /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}X: y${CRLF} Transfer-Encoding: chunked${CRLF}${CRLF}${chunked(smuggled())}`, refused: true },
      { name: 'Connection names Content-Length', raw: `POST /attack HTTP/1.1${CRLF}Host: ${host()}${CRLF}Connection: content-length${CRLF}Content-Length: ${smuggled().length}${CRLF}${CRLF}${smuggled()}`, body: smuggled() },
    ];
    const failures: string[] = [];
    for (const [i, a] of attacks.entries()) {
      const tagged = a.raw.replace('/attack', `/attack-${i}`);
      const got = (await runScript(d.gatewayPort, { kind: a.name, steps: [{ write: Buffer.from(tagged, 'latin1') }] }, { quietMs: 400 })).bytes.toString('latin1');
      if (!got.startsWith(a.refused ? 'HTTP/1.1 400 ' : 'HTTP/1.1 200 ')) failures.push(`${a.name}: answered ${JSON.stringify(got.slice(0, 40))}`);
      // The next visitor takes the same pooled upstream connection: it must get its own answer, not the smuggled one.
      const victim = await d.gateway(host(), `/victim-${i}`);
      if (victim.body !== `you asked for GET /victim-${i}`) failures.push(`${a.name}: the next visitor got ${JSON.stringify(victim.body)}`);
    }
    const log = (await execIn(id, ['cat', LOG])).output.trim().split('\n').map((l) => JSON.parse(l) as { method: string; url: string; body: string; te: string | null });
    const smuggledIn = log.filter((r) => r.url.includes('smuggled'));
    if (smuggledIn.length) failures.push(`the app got ${smuggledIn.length} request(s) the gateway never saw`);
    attacks.forEach((a, i) => {
      const seen = log.filter((r) => r.url === `/attack-${i}`);
      if (a.refused) {
        if (seen.length) failures.push(`${a.name}: reached the app although refused`);
      } else if (seen.length !== 1 || seen[0]!.body !== a.body) {
        // The body must arrive as the body, framed: the app reads it whole, whatever the method.
        failures.push(`${a.name}: the app saw ${JSON.stringify(seen)}`);
      }
    });
    expect(failures).toEqual([]);
    expect(log.filter((r) => r.url.startsWith('/victim-'))).toHaveLength(attacks.length);
    expect(d.output).not.toMatch(/unhandled|uncaught|unexpected error/i);
  }, 120_000);

  it('sets X-Forwarded-* from what the gateway saw and strips hop-by-hop headers, those named in Connection too, both ways', async () => {
    const r = await d.gateway(host(), '/hop', { headers: {
      'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6',
      connection: 'keep-alive, x-client-hop', 'x-client-hop': 'secret', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', te: 'trailers', upgrade: 'h2c',
    } });
    expect(r.status).toBe(200);
    for (const h of ['x-app-hop', 'proxy-connection', 'upgrade']) expect(r.headers[h], h).toBeUndefined();
    // The gateway's own connection to the client has its own Keep-Alive; the app's never comes through.
    expect(r.headers['keep-alive']).not.toBe('timeout=99');
    expect(String(r.headers.connection ?? '')).not.toMatch(/x-app-hop/);
    const log = (await execIn(id, ['cat', LOG])).output.trim().split('\n').map((l) => JSON.parse(l) as { url: string; headers: string[] });
    const raw = log.filter((e) => e.url === '/hop').at(-1)!.headers;
    const seen: Record<string, string[]> = {};
    for (let i = 0; i < raw.length; i += 2) (seen[raw[i]!.toLowerCase()] ??= []).push(raw[i + 1]!);
    expect(seen['x-forwarded-for']).toEqual(['127.0.0.1']);
    expect(seen['x-forwarded-host']).toEqual([host()]);
    expect(seen['x-forwarded-proto']).toEqual(['http']);
    expect(seen.host).toEqual([host()]);
    for (const h of ['forwarded', 'x-client-hop', 'keep-alive', 'proxy-connection', 'te', 'upgrade']) expect(seen[h], h).toBeUndefined();
  });

  it('refuses preview WebSockets past the per-sandbox cap with 429 and Retry-After, and admits again once one closes', async () => {
    const { connect } = await import('node:net');
    const upgrade = `GET /ws HTTP/1.1\r\nHost: ${host()}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const open = () => new Promise<{ sock: import('node:net').Socket; head: string }>((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: d.gatewayPort });
      let got = '';
      sock.on('error', reject);
      sock.on('data', (c) => {
        got += c.toString('latin1');
        if (got.includes('\r\n\r\n')) resolve({ sock, head: got });
      });
      sock.on('close', () => resolve({ sock, head: got }));
      sock.write(upgrade);
    });
    const held = await Promise.all([open(), open(), open(), open()]);
    for (const h of held) expect(h.head).toMatch(/^HTTP\/1\.1 101 /);
    // Bytes flow both ways through an admitted one.
    const echoed = new Promise<string>((r) => held[0]!.sock.once('data', (c) => r(c.toString())));
    held[0]!.sock.write('ping');
    expect(await echoed).toBe('ping');
    const refused = await open();
    expect(refused.head).toMatch(/^HTTP\/1\.1 429 /);
    expect(refused.head).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(refused.head).toMatch(/rate_limited/);
    held[3]!.sock.destroy();
    const again = await eventually(async () => {
      const o = await open();
      if (!o.head.startsWith('HTTP/1.1 101 ')) o.sock.destroy();
      return o.head.startsWith('HTTP/1.1 101 ') ? o : undefined;
    }, 5000);
    expect(again?.head).toMatch(/^HTTP\/1\.1 101 /);
    for (const h of [...held, again!]) h.sock.destroy();
  });

  // Last: it stops the sandbox.
  it("destroys a sandbox's pooled upstream connections once it stops, so a reused address gets none of them", async () => {
    expect((await d.gateway(host(), '/pooled')).status).toBe(200);
    const dropped = async () => Number(/sandboxd_gateway_upstream_pools_dropped_total\{reason="stopped"\} (\d+)/.exec((await d.api('GET', '/metrics')).text)?.[1] ?? 0);
    expect(await dropped()).toBe(0);
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    expect(await eventually(async () => (await dropped()) === 1, 15_000, 250)).toBe(true);
  });
});
