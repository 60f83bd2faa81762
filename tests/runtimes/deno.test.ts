import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, startDaemon } from '../support/daemon.ts';

describe('the daemon under Deno 2', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon({ runtime: 'deno' })));
  afterAll(() => d?.cleanup());

  it('serves create, get, exec, stop, start, delete and purge from the same sources', async () => {
    const created = await d.api('POST', '/sandbox', { ports: [3000] });
    expect(created.status).toBe(201);
    const { id } = created.body;
    expect((await d.api('GET', `/sandbox/${id}`)).body).toMatchObject({ id, status: 'running' });
    expect((await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', 'echo from-deno'] })).body).toMatchObject({ stdout: 'from-deno\n', exit_code: 0 });
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    expect((await d.api('DELETE', `/sandbox/${id}`)).body.status).toBe('destroyed');
    expect((await d.api('POST', `/sandbox/${id}/purge`)).body).toEqual({ id, status: 'purged' });
  });

  it('reconciles on boot after a kill -9, still under Deno', async () => {
    const { id } = (await d.api('POST', '/v1/sandboxes', {})).body;
    await d.stop(true);
    d = await new Daemon({ reuse: d }).start(d.port);
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('running');
    expect(d.output).toMatch(/boot reconcile done/);
  });
});
