import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectConsistent } from '../support/consistency.ts';
import { createSandbox, Daemon, docker, eventually, startDaemon, TEST_IMAGE } from '../support/daemon.ts';

describe('reconciliation', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  const status = async (id: string) => (await d.api('GET', `/v1/sandboxes/${id}`)).body;

  it('marks a sandbox stopped (reason exited) within 5 s of its container being stopped behind our back', async () => {
    const { id } = (await d.api('POST', '/v1/sandboxes', {})).body;
    await docker.getContainer(`s-${id}`).stop({ t: 0 });
    const s = await eventually(async () => ((await status(id)).status === 'stopped' ? status(id) : undefined), 5000);
    expect(s).toMatchObject({ status: 'stopped', reason: 'exited', last_stop_reason: 'exited' });
  });

  it('marks a killed container stopped within 5 s, and starts it again on request', async () => {
    const { id } = (await d.api('POST', '/v1/sandboxes', {})).body;
    await docker.getContainer(`s-${id}`).kill();
    expect(await eventually(async () => (await status(id)).status === 'stopped', 5000)).toBe(true);
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
  });

  it('marks a removed container stopped within 5 s and recreates it from the record on start', async () => {
    const { id } = (await d.api('POST', '/v1/sandboxes', { env: { KEPT: 'yes' } })).body;
    await docker.getContainer(`s-${id}`).remove({ force: true });
    expect(await eventually(async () => (await status(id)).status === 'stopped', 5000)).toBe(true);
    expect(await eventually(async () => (await status(id)).container_id === null, 5000)).toBe(true);
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    expect((await docker.getContainer(`s-${id}`).inspect()).Config.Env).toContain('KEPT=yes');
  });

  it('records oom_killed when the engine reports the container was OOM-killed', async () => {
    // A sandbox whose main process is a memory hog under a small limit: the kernel kills it, the engine says OOMKilled.
    const { id } = (await d.api('POST', '/v1/sandboxes', { resources: { memory_mb: 64 } })).body;
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    const c = docker.getContainer(`s-${id}`);
    const info = await c.inspect();
    await c.remove({ force: true });
    const hog = await docker.createContainer({
      name: `s-${id}`, Image: TEST_IMAGE, User: info.Config.User, Labels: info.Config.Labels,
      Cmd: ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x="$x$x"; done'],
      HostConfig: { Memory: 64 * 1024 * 1024, MemorySwap: 64 * 1024 * 1024, NetworkMode: d.network },
    });
    // The row says stopped; make it running the way a start would, then let the hog die.
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    const s = await eventually(async () => ((await status(id)).status === 'stopped' ? status(id) : undefined), 20_000);
    expect((await hog.inspect()).State.OOMKilled).toBe(true);
    expect(s).toMatchObject({ status: 'stopped', reason: 'oom_killed' });
  });

  it('leaves a consistent state after kill -9 in the middle of creates, deletes and purges', async () => {
    for (const delay of [5, 40, 120, 250]) {
      const victims = await Promise.all([0, 1].map(async () => await createSandbox(d)));
      const inFlight = [
        fetch(`${d.url}/v1/sandboxes`, { method: 'POST', body: '{}' }).catch(() => undefined),
        fetch(`${d.url}/v1/sandboxes/${victims[0]}`, { method: 'DELETE' }).catch(() => undefined),
        fetch(`${d.url}/v1/sandboxes/${victims[1]}?purge=true`, { method: 'DELETE' }).catch(() => undefined),
      ];
      await new Promise((r) => setTimeout(r, delay));
      await d.stop(true);
      await Promise.all(inFlight);
      d = await new Daemon({ reuse: d }).start(d.port);
      await expectConsistent(d);
    }
  });

  it('reports a labelled container without a row and leaves it, unless told to remove orphans', async () => {
    const orphanId = ulid();
    const orphan = await docker.createContainer({
      name: `s-${orphanId}`, Image: TEST_IMAGE, Cmd: ['sleep', '600'],
      Labels: { 'sandboxed.managed': 'true', 'sandboxed.id': orphanId, 'sandboxed.instance': d.instance },
    });
    await d.stop();
    d = await new Daemon({ reuse: d }).start(d.port);
    expect(d.output).toMatch(/container without a sandbox row/);
    expect((await orphan.inspect()).Id).toBe(orphan.id);
    await d.stop();
    d = await new Daemon({ reuse: d, env: { SANDBOXD_RECONCILE_REMOVE_ORPHANS: 'true' } }).start(d.port);
    await expect(orphan.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});
