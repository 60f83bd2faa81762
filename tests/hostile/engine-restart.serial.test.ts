import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inconsistencies } from '../support/consistency.ts';
import { createSandbox, docker, ROOT, startDaemon, type Daemon } from '../support/daemon.ts';

const run = promisify(execFile);

async function engineAnswers(): Promise<boolean> {
  return docker.ping().then(() => true, () => false);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('R2 engine restart', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(async () => {
    if (!(await engineAnswers())) await run('bash', [join(ROOT, 'scripts/ensure-docker.sh')]);
    await d?.cleanup();
  });

  it('keeps serving while dockerd is down (readyz says so), and every row matches reality within 30 s of its return', async () => {
    const running = await Promise.all([0, 1].map(async () => await createSandbox(d)));
    const stopped = await createSandbox(d);
    await d.api('POST', `/v1/sandboxes/${stopped}/stop`);

    // This machine runs dockerd under no service manager (scripts/ensure-docker.sh): stop it with a signal.
    await run('pkill', ['-TERM', '-x', 'dockerd']);
    await waitFor('the engine going away', async () => !(await engineAnswers()), 60_000);
    await waitFor('dockerd exiting', async () => run('pgrep', ['-x', 'dockerd']).then(() => false, () => true), 60_000);

    expect((await d.api('GET', '/healthz')).status).toBe(200);
    const ready = await d.api('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/docker|runtime|engine/i);
    const list = await d.api('GET', '/v1/sandboxes');
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(3);
    const create = await d.api('POST', '/v1/sandboxes', {});
    expect(create.status, create.text).toBeGreaterThanOrEqual(500);
    expect(create.status).not.toBe(500);
    expect(create.body.error.retryable).toBe(true);

    await run('bash', [join(ROOT, 'scripts/ensure-docker.sh')]);
    const back = Date.now();
    await waitFor('rows matching reality', async () => (await inconsistencies(d)).length === 0 && (await d.api('GET', '/readyz')).status === 200, 30_000);
    const settled = Date.now() - back;
    expect(settled).toBeLessThan(30_000);
    for (const id of running) {
      expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('stopped');
      expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    }
    expect((await d.api('POST', '/v1/sandboxes', {})).status).toBe(201);
  });
});
