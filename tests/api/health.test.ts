import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

describe('health endpoints', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  it('answers /healthz with plain ok, as the README quick start shows', async () => {
    const r = await d.api('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.text).toBe('ok');
    expect(r.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('reports SQLite and Docker reachable on /readyz', async () => {
    const r = await d.api('GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ready: true, checks: { sqlite: 'ok', runtime: 'ok', disk: 'ok' } });
  });

  it('serves an OpenAPI 3.1 document that lists every lifecycle route', async () => {
    const r = await d.api('GET', '/openapi.json');
    expect(r.body.openapi).toBe('3.1.0');
    for (const path of ['/v1/sandboxes', '/v1/sandboxes/{id}', '/v1/sandboxes/{id}/stop', '/sandbox', '/sandboxes', '/sandbox/{id}/purge']) {
      expect(Object.keys(r.body.paths)).toContain(path);
    }
    expect(r.body.paths['/v1/sandboxes'].post.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
  });

  it('serves Prometheus metrics with request counts and sandboxes by status', async () => {
    await d.api('GET', '/healthz');
    const r = await d.api('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain; version=0.0.4/);
    expect(r.text).toMatch(/^sandboxd_http_requests_total\{operation="healthz",status="200"\} [1-9]/m);
    expect(r.text).toMatch(/^# TYPE sandboxd_sandboxes gauge$/m);
    expect(r.text).toMatch(/^sandboxd_event_loop_delay_p99_seconds [0-9.e-]+$/m);
  });

  it('answers an unknown route with the error envelope and a stable code', async () => {
    const r = await d.api('GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: 'not_found', retryable: false });
    expect(r.body.error.request_id).toBe(r.headers.get('x-request-id'));
  });
});
