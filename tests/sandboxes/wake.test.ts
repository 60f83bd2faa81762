import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDaemon, type Daemon } from '../support/daemon.ts';
import { TASK_DAEMON_ENV, claudeEnv, waitForTask } from '../support/tasks.ts';

const PORT = 4120;

/**
 * The app's dev server runs the scripted model (so it comes back with every wake) beside a shell that
 * ignores SIGTERM: the supervisor then waits its 5 s grace before killing the group, so every stop of this
 * sandbox stays `stopping` for about 5 s, long enough to send requests into it.
 */
const PACKAGE_JSON = JSON.stringify({
  name: 'slow-stop', private: true,
  scripts: { dev: `sh -c 'trap "" TERM; node .fake/model.mjs ${PORT} ok & while :; do sleep 1; done'` },
});

describe('one wake for every way in', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon({ env: { ...TASK_DAEMON_ENV, SANDBOXD_IDLE_TICK_S: '1', SANDBOXD_STOP_GRACE_S: '30' } });
  });
  afterAll(() => d?.cleanup());

  it('an exec and a task submitted while an idle stop is under way wait for it, wake the sandbox, and both succeed', async () => {
    const create = await d.api('POST', '/v1/sandboxes', { idle_timeout_s: 10, env: { ANTHROPIC_API_KEY: 'sk-ant-test-0123456789abcdef' } });
    expect(create.status, create.text).toBe(201);
    const id = create.body.id as string;
    const put = (path: string, content: string) => d.api('PUT', `/v1/sandboxes/${id}/files`, { path, content });
    expect((await put('.fake/model.mjs', readFileSync(join(ROOT, 'tests/support/fake-model.mjs'), 'utf8'))).status).toBe(200);
    expect((await put('package.json', PACKAGE_JSON)).status).toBe(200);
    const modelUp = await d.api('POST', `/v1/sandboxes/${id}/exec`, {
      cmd: ['sh', '-c', 'for i in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$0/" && exit 0; sleep 0.2; done; exit 1', String(PORT)],
    });
    expect(modelUp.body.exit_code, 'the dev server (the scripted model) came up').toBe(0);

    // Nothing touches it now: the idle reaper claims it, and the stop then takes the supervisor's 5 s grace.
    let status = '';
    for (const until = Date.now() + 60_000; status !== 'stopping' && Date.now() < until;) {
      status = (await d.api('GET', `/v1/sandboxes/${id}`)).body.status;
      if (status !== 'stopping') await new Promise((r) => setTimeout(r, 25));
    }
    expect(status, 'the idle reaper started stopping it').toBe('stopping');
    const sentAt = Date.now();
    const [exec, task] = await Promise.all([
      d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', 'echo awake'] }),
      // Retries cover the moment between the wake and the dev server (the model) listening again.
      d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'write hello.txt', agent: 'claude', env: { ...claudeEnv(PORT), CLAUDE_CODE_MAX_RETRIES: '6' } }),
    ]);
    expect(exec.status, exec.text).toBe(200);
    expect(exec.body).toMatchObject({ exit_code: 0, stdout: 'awake\n' });
    expect(task.status, task.text).toBe(202);

    // The idle stop finished first (after the requests were sent), then one of them woke the sandbox.
    const after = (await d.api('GET', `/v1/sandboxes/${id}`)).body;
    expect(after).toMatchObject({ status: 'running', last_stop_reason: 'idle' });
    expect(['wake:api', 'wake:task']).toContain(after.reason);
    expect(Date.parse(after.stopped_at)).toBeGreaterThanOrEqual(sentAt);

    const done = await waitForTask(d, id, task.body.id);
    expect(done, JSON.stringify(done)).toMatchObject({ status: 'succeeded', result: { message: 'Done: I wrote hello.txt.' } });
    expect((await d.api('GET', `/v1/sandboxes/${id}/files?path=hello.txt`)).text).toContain('hello from the agent');
  }, 180_000);
});
