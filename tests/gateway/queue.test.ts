import { request, type ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

const SLOW_CGI = '#!/bin/sh\nsleep 30\nprintf "Content-Type: text/plain\\r\\n\\r\\nslow\\n"\n';

describe('preview gateway upstream limit', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon({ env: { SANDBOXD_GATEWAY_QUEUE_WAIT_S: '1' } })));
  afterAll(() => d?.cleanup());

  it('answers 503 with Retry-After to a request that waits too long behind 64 open ones to the same port, and serves others again once they end', async () => {
    const id = await createSandbox(d);
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'cgi-bin/slow', content: SLOW_CGI });
    await execIn(id, ['chmod', '755', '/home/sandbox/workspace/app/cgi-bin/slow']);
    const host = `s-${id.toLowerCase()}-3000.preview.localhost`;
    expect(await eventually(async () => (await d.gateway(host, '/')).status === 200)).toBe(true);

    // 64 requests that the app holds open: every upstream connection to this port is taken.
    const held: ClientRequest[] = [];
    for (let i = 0; i < 64; i++) {
      const r = request({ host: '127.0.0.1', port: d.gatewayPort, path: '/cgi-bin/slow', headers: { host } });
      r.on('error', () => undefined);
      r.end();
      held.push(r);
    }
    // Every one of them has reached the app (its CGI sleeps): all 64 upstream connections are taken.
    const sleeping = async () => Number((await execIn(id, ['sh', '-c', 'ps -o args | grep -c "^sleep 30$"'])).output.trim());
    expect(await eventually(async () => (await sleeping()) >= 64, 15_000, 100)).toBe(true);
    const t0 = Date.now();
    const waited = await d.gateway(host, '/');
    expect(waited.status).toBe(503);
    expect(waited.headers['retry-after']).toBe('2');
    expect(JSON.parse(waited.body).error.code).toBe('capacity');
    expect(Date.now() - t0).toBeLessThan(5000);

    for (const r of held) r.destroy();
    expect(await eventually(async () => (await d.gateway(host, '/')).status === 200, 10_000)).toBe(true);
  });
});
