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
    fs.appendFileSync('${LOG}', JSON.stringify({ method: req.method, url: req.url, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, body }) + '\n');
    const text = 'you asked for ' + req.method + ' ' + req.url;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
});
server.keepAliveTimeout = 120000;
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
    d = await startDaemon({ env: { SANDBOXD_IMAGE: 'sandboxed/sandbox:latest', SANDBOXD_DEFAULT_MEMORY_MB: '512' } });
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
});
