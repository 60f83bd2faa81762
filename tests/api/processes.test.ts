import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

describe('background processes (detach)', () => {
  let d: Daemon;
  let id: string;

  beforeAll(async () => {
    d = await startDaemon();
    id = await createSandbox(d);
  });
  afterAll(() => d?.cleanup());

  const detach = (cmd: string[]) => d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd, detach: true });
  const list = async () => (await d.api('GET', `/v1/sandboxes/${id}/processes`)).body.data as any[];

  it('starts a command in the background and answers at once with its pid', async () => {
    const t0 = Date.now();
    const r = await detach(['sh', '-c', 'sleep 30']);
    expect(r.status).toBe(202);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.body).toMatchObject({ status: 'running', cmd: ['sh', '-c', 'sleep 30'], cwd: '/home/sandbox/workspace/app', exit_code: null });
    expect(r.body.logs_url).toBe(`/v1/sandboxes/${id}/processes/${r.body.pid}/logs`);
    expect((await list()).find((p) => p.pid === r.body.pid)?.status).toBe('running');
  });

  it('lists a finished process with its exit code and serves its combined output', async () => {
    const { pid } = (await detach(['sh', '-c', 'echo to-out; echo to-err >&2; exit 4'])).body;
    const done = await eventually(async () => (await list()).find((p) => p.pid === pid && p.status === 'exited'), 5000);
    expect(done.exit_code).toBe(4);
    const logs = await d.api('GET', `/v1/sandboxes/${id}/processes/${pid}/logs`);
    expect(logs.headers.get('content-type')).toMatch(/text\/plain/);
    expect(logs.text).toBe('to-out\nto-err\n');
    expect((await d.api('GET', `/v1/sandboxes/${id}/processes/${pid}/logs?tail_bytes=7`)).text).toBe('to-err\n');
  });

  it('ends a process and everything it started when killed', async () => {
    const { pid } = (await detach(['sh', '-c', 'sleep 501 & sleep 502'])).body;
    expect(await eventually(async () => /sleep 502/.test((await execIn(id, ['ps', '-o', 'args'])).output), 5000)).toBe(true);
    const killed = await d.api('DELETE', `/v1/sandboxes/${id}/processes/${pid}`);
    expect(killed.status).toBe(200);
    expect(killed.body.status).not.toBe('running');
    expect((await execIn(id, ['ps', '-o', 'args'])).output).not.toMatch(/sleep 50[12]/);
  });

  it('reports processes of a sandbox that stopped since as gone', async () => {
    const { pid } = (await detach(['sleep', '600'])).body;
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    await d.api('POST', `/v1/sandboxes/${id}/start`);
    expect((await list()).find((p) => p.pid === pid)?.status).toBe('gone');
  });

  it('refuses unknown pids, malformed pids and detach with stdin', async () => {
    expect((await d.api('GET', `/v1/sandboxes/${id}/processes/99999/logs`)).status).toBe(404);
    expect((await d.api('DELETE', `/v1/sandboxes/${id}/processes/abc`)).status).toBe(400);
    const r = await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['cat'], detach: true, stdin: 'x' });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/stdin/);
  });
});
