import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

/** Counts `start` events of one container between now and when `during` settles. */
async function countStarts(container: string, during: () => Promise<unknown>): Promise<number> {
  const since = (Date.now() / 1000).toFixed(3);
  await during();
  await new Promise((r) => setTimeout(r, 300));
  const until = Math.floor(Date.now() / 1000) + 1;
  const stream = await docker.getEvents({ since: since as unknown as number, until, filters: JSON.stringify({ container: [container], event: ['start'] }) });
  let text = '';
  for await (const chunk of stream as unknown as AsyncIterable<Buffer>) text += chunk.toString();
  return text.split('\n').filter((l) => l.includes('"start"')).length;
}

const ECHO_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "method=$REQUEST_METHOD"\nhead -c "${CONTENT_LENGTH:-0}"\n';

describe('preview gateway', () => {
  let d: Daemon;
  let id: string;
  const host = (sandbox: string, port = 3000) => `s-${sandbox.toLowerCase()}-${port}.preview.localhost`;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_WAKE_HOLD_S: '4', SANDBOXD_STARTING_PAGE_AFTER_MS: '300' } });
    id = (await d.api('POST', '/v1/sandboxes', { ports: [3000, 3001] })).body.id;
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'cgi-bin/echo', content: ECHO_CGI });
    await execIn(id, ['chmod', '755', '/home/sandbox/workspace/app/cgi-bin/echo']);
  });
  afterAll(() => d?.cleanup());

  it('serves a sandbox port by Host, with the id in any case and with a :port suffix', async () => {
    for (const h of [host(id), host(id).toUpperCase(), `${host(id)}:${d.gatewayPort}`, `s-${id}-3000.preview.localhost`]) {
      const r = await d.gateway(h, '/index.html');
      expect(r.status, h).toBe(200);
      expect(r.body).toContain('hello from the sandboxed test image');
    }
  });

  it('answers an unknown sandbox, an unpublished port and other hosts with a 404 page', async () => {
    for (const h of [host('01ARZ3NDEKTSV4RRFFQ69G5FAV'), host(id, 8080), 'localhost', 'example.com', `preview.localhost`, 's-x-1.preview.localhost', '']) {
      const r = await d.gateway(h, '/index.html');
      expect(r.status, h).toBe(404);
      expect(r.headers['content-type']).toMatch(/text\/html/);
    }
  });

  it('never reaches an API route, whatever the Host header', async () => {
    for (const h of ['127.0.0.1', `127.0.0.1:${d.port}`, `localhost:${d.port}`, host(id)]) {
      for (const path of ['/v1/sandboxes', '/sandboxes', '/healthz', '/openapi.json', '/metrics']) {
        const r = await d.gateway(h, path);
        expect(r.body, `${h}${path}`).not.toMatch(/"data"|"openapi"|sandboxd_|^ok$/);
      }
    }
  });

  it('R9: wakes a stopped sandbox on a POST and the app itself answers it, body included, with one start for 200 concurrent requests', async () => {
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    const responses: { status: number; body: string }[] = [];
    const starts = await countStarts(`s-${id}`, async () => {
      responses.push(...(await Promise.all(Array.from({ length: 200 }, (_, i) =>
        d.gateway(host(id), '/cgi-bin/echo', { method: 'POST', body: `payload-${i}`, headers: { 'content-type': 'text/plain' } })))));
    });
    expect(starts).toBe(1);
    responses.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`method=POST\npayload-${i}`);
    });
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body).toMatchObject({ status: 'running', reason: 'wake:http' });
  });

  it('shows a browser the starting page during a slow wake, then the app on refresh', async () => {
    const slow = (await d.api('POST', '/v1/sandboxes', { env: { SERVE_DELAY: '2' } })).body.id;
    await d.api('POST', `/v1/sandboxes/${slow}/stop`);
    const first = await d.gateway(host(slow), '/index.html', { headers: { accept: 'text/html,*/*' } });
    expect(first.status).toBe(200);
    expect(first.body).toMatch(/Starting…/);
    expect(first.body).toMatch(/http-equiv="refresh"/);
    // The browser refreshes until the app answers (it serves after SERVE_DELAY=2 s).
    const again = await eventually(async () => {
      const r = await d.gateway(host(slow), '/index.html', { headers: { accept: 'text/html,*/*' } });
      return r.body.includes('hello from the sandboxed test image') ? r : undefined;
    }, 15_000, 250);
    expect(again?.status).toBe(200);
  });

  it('answers every waiter of a wake that does not finish within the hold with 503 and Retry-After', async () => {
    const never = (await d.api('POST', '/v1/sandboxes', { env: { SERVE_DELAY: '60' } })).body.id;
    await d.api('POST', `/v1/sandboxes/${never}/stop`);
    const all = await Promise.all(Array.from({ length: 5 }, () => d.gateway(host(never), '/')));
    for (const r of all) {
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect(JSON.parse(r.body).error.code).toBe('not_ready');
    }
  });

  it('passes a connection upgrade through to the app, bytes flowing both ways, and holds a lease while open', async () => {
    // A tiny upgrade responder inside the sandbox: answers 101, then echoes what it reads.
    const responder = 'printf "HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n"; exec cat';
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: '~/upgrade.sh', content: responder });
    await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', 'nc -ll -p 3001 -e sh /home/sandbox/upgrade.sh'], detach: true });
    // Listening (state 0A) on port 3001 (0BB9), in the sandbox's own /proc/net.
    const listening = async () => (await execIn(id, ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":0BB9 [0-9A-F:]* 0A"'])).code === 0;
    expect(await eventually(listening, 5000, 50)).toBe(true);
    const sock = connect({ host: '127.0.0.1', port: d.gatewayPort });
    let got = '';
    sock.on('data', (c) => (got += c));
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${host(id, 3001)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    expect(await eventually(async () => /^HTTP\/1.1 101 [^]*\r\n\r\n/.test(got), 5000, 20)).toBe(true);
    expect(got).toMatch(/^HTTP\/1.1 101/);
    sock.write('ping-through-gateway');
    expect(await eventually(async () => got.includes('ping-through-gateway'), 5000, 20)).toBe(true);
    const activity = (await d.api('GET', `/v1/sandboxes/${id}/activity`)).body;
    expect(activity.leases.map((l: any) => l.kind)).toContain('preview_ws');
    sock.destroy();
    expect(await eventually(async () => (await d.api('GET', `/v1/sandboxes/${id}/activity`)).body.leases.length === 0, 5000, 50)).toBe(true);
  });
});
