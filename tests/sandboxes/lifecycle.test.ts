import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, execIn, SANDBOX_UID, startDaemon, type Daemon } from '../support/daemon.ts';

describe('sandbox lifecycle', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  const create = (body: unknown = {}) => d.api('POST', '/v1/sandboxes', body);
  const workspace = (id: string) => join(d.dataDir, 'workspaces', id);

  it('creates a running container with every hardening flag of the spec', async () => {
    const r = await create({ resources: { memory_mb: 512, cpus: 0.5, pids: 256 } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: 'running', reason: 'created', ports: [3000], owner: 'local' });
    const info = await docker.getContainer(`s-${r.body.id}`).inspect();
    const hc = info.HostConfig;
    expect(info.State.Running).toBe(true);
    expect(info.Config.User).toBe(`${SANDBOX_UID}:${SANDBOX_UID}`);
    expect(info.Config.Hostname).toBe(`s-${r.body.id}`);
    expect(info.Config.Labels).toMatchObject({ 'sandboxed.managed': 'true', 'sandboxed.id': r.body.id, 'sandboxed.instance': d.instance });
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.CapAdd ?? []).toEqual([]);
    expect(hc.SecurityOpt).toContain('no-new-privileges:true');
    expect(hc.Privileged).toBe(false);
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(Object.keys(hc.Tmpfs ?? {}).sort()).toEqual(['/tmp', '/var/tmp']);
    expect(hc.Init).toBe(true);
    expect(hc.Memory).toBe(512 * 1024 * 1024);
    expect(hc.MemorySwap).toBe(hc.Memory);
    expect(hc.PidsLimit).toBe(256);
    expect(hc.NanoCpus).toBe(0.5e9);
    expect(hc.Ulimits?.find((u) => u.Name === 'nofile')?.Hard).toBeGreaterThanOrEqual(1024);
    expect(hc.NetworkMode).toBe(d.network);
    expect(hc.Binds).toEqual([`${workspace(r.body.id)}:/home/sandbox`]);
    const net = await docker.getNetwork(d.network).inspect();
    expect(net.Options['com.docker.network.bridge.enable_icc']).toBe('false');
    expect(net.Labels).toMatchObject({ 'sandboxed.managed': 'true' });
  });

  it('gives the sandbox a workspace owned by the sandbox uid (not 1000), seeded from the image skeleton', async () => {
    const { id } = (await create()).body;
    for (const dir of ['', 'workspace', 'workspace/app']) {
      const st = statSync(join(workspace(id), dir));
      expect([st.uid, st.gid, st.isDirectory()], dir).toEqual([SANDBOX_UID, SANDBOX_UID, true]);
    }
    expect(readFileSync(join(workspace(id), 'workspace/app/index.html'), 'utf8')).toContain('hello from the sandboxed test image');
    // The sandbox copied its skeleton itself, as its own user: every seeded file is the sandbox user's.
    for (const file of ['.profile', 'workspace/app/index.html']) expect(statSync(join(workspace(id), file)).uid, file).toBe(SANDBOX_UID);
    expect((await execIn(id, ['id', '-u'])).output.trim()).toBe(String(SANDBOX_UID));
  });

  it('seeds a home once: a skeleton file the user deleted stays deleted after a stop and a start', async () => {
    const { id } = (await create()).body;
    expect((await execIn(id, ['rm', '/home/sandbox/.profile'])).code).toBe(0);
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    expect((await execIn(id, ['sh', '-c', 'test -e /home/sandbox/.profile && echo back || echo gone'])).output).toBe('gone\n');
  });

  it('reflects the sandbox in get and list, with preview URLs and live container state', async () => {
    const { id } = (await create({ name: 'listed-one', ports: [3000, 5173], labels: { team: 'red' }, external: { user_id: 'u-1' } })).body;
    const got = (await d.api('GET', `/v1/sandboxes/${id}`)).body;
    expect(got.container).toMatchObject({ running: true, state: 'running' });
    expect(got.container.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(got.preview_urls).toEqual({
      '3000': `http://s-${id.toLowerCase()}-3000.preview.localhost:${d.gatewayPort}`,
      '5173': `http://s-${id.toLowerCase()}-5173.preview.localhost:${d.gatewayPort}`,
    });
    const byLabel = (await d.api('GET', '/v1/sandboxes?label=team=red')).body.data;
    expect(byLabel.map((s: any) => s.id)).toEqual([id]);
    const byUser = (await d.api('GET', '/v1/sandboxes?user_id=u-1')).body.data;
    expect(byUser.map((s: any) => s.id)).toEqual([id]);
    expect((await d.api('GET', `/v1/sandboxes/${id.toLowerCase()}`)).body.id).toBe(id);
    expect((await d.api('GET', '/v1/sandboxes/listed-one')).body.id).toBe(id);
  });

  it('pages through the list newest first with an opaque cursor', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await create({ labels: { page: 'yes' } })).body.id);
    const first = (await d.api('GET', '/v1/sandboxes?label=page=yes&limit=2')).body;
    expect(first.data.map((s: any) => s.id)).toEqual([ids[2], ids[1]]);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = (await d.api('GET', `/v1/sandboxes?label=page=yes&limit=2&cursor=${first.next_cursor}`)).body;
    expect(second.data.map((s: any) => s.id)).toEqual([ids[0]]);
    expect(second.next_cursor).toBeNull();
  });

  it('stops, starts with the workspace intact, destroys keeping the workspace, and purges both', async () => {
    const { id } = (await create({ name: 'round-trip' })).body;
    writeFileSync(join(workspace(id), 'workspace/app/kept.txt'), 'still here');

    const stopped = await d.api('POST', '/v1/sandboxes/round-trip/stop');
    expect(stopped.body).toMatchObject({ status: 'stopped', reason: 'api_stop', last_stop_reason: 'api_stop' });
    expect((await docker.getContainer(`s-${id}`).inspect()).State.Running).toBe(false);
    expect((await d.api('POST', '/v1/sandboxes/round-trip/stop')).body.status).toBe('stopped');

    const started = await d.api('POST', '/v1/sandboxes/round-trip/start');
    expect(started.body).toMatchObject({ status: 'running', reason: 'wake:api' });
    expect((await execIn(id, ['cat', '/home/sandbox/workspace/app/kept.txt'])).output).toBe('still here');

    const destroyed = await d.api('DELETE', '/v1/sandboxes/round-trip');
    expect(destroyed.body).toMatchObject({ status: 'destroyed', container_id: null });
    await expect(docker.getContainer(`s-${id}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(readFileSync(join(workspace(id), 'workspace/app/kept.txt'), 'utf8')).toBe('still here');
    expect((await d.api('GET', '/v1/sandboxes?status=destroyed')).body.data.map((s: any) => s.id)).toContain(id);

    const revived = await d.api('POST', `/v1/sandboxes/${id}/start`);
    expect(revived.body.status).toBe('running');
    expect((await execIn(id, ['cat', '/home/sandbox/workspace/app/kept.txt'])).output).toBe('still here');

    const purged = await d.api('DELETE', `/v1/sandboxes/${id}?purge=true`);
    expect(purged.body).toEqual({ id, status: 'purged' });
    expect(existsSync(workspace(id))).toBe(false);
    await expect(docker.getContainer(`s-${id}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).status).toBe(404);
  });

  it('postpones idle stop with keepalive, capped by the server maximum', async () => {
    const { id } = (await create()).body;
    const before = Date.now();
    const r = await d.api('POST', `/v1/sandboxes/${id}/keepalive`, { seconds: 600 });
    const until = Date.parse(r.body.keepalive_until);
    expect(until).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);
    const capped = await d.api('POST', `/v1/sandboxes/${id}/keepalive`, { seconds: 10 * 86400 });
    expect(Date.parse(capped.body.keepalive_until)).toBeLessThanOrEqual(Date.now() + 86400_000 + 1000);
  });

  it('applies resources within the server maxima and refuses more, naming the field', async () => {
    const over = await create({ resources: { memory_mb: 1 << 20 } });
    expect(over.status).toBe(400);
    expect(over.body.error.message).toMatch(/resources\.memory_mb/);
    expect(over.body.error.message).toMatch(/SANDBOXD_MAX_MEMORY_MB/);
  });
});
