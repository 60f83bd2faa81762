import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SECRETS, redactor, secretValues } from '../../src/tasks/redact.ts';
import { Daemon, eventually, execIn, startDaemon } from '../support/daemon.ts';
import { sandboxWithStandIn, TASK_DAEMON_ENV, waitForTask } from '../support/tasks.ts';

/**
 * Findings of an attacker's review of agent tasks (issue #11): an agent (a stand-in `claude` on the sandbox's
 * PATH) that floods ignored lines, fills its output file, or lifts its own deadline across a restart.
 */
const RESULT = `'{"type":"result","subtype":"success","is_error":false,"result":"ok","usage":{},"total_cost_usd":0}'`;
/** 40,000 lines the normaliser turns into no event, as fast as the shell writes them, then a result. */
const IGNORED_LINES_AGENT = `#!/bin/sh\nyes '{"type":"system"}' | head -n 40000\necho ${RESULT}\n`;
/** Lines of 1000 bytes for ever: past the 1 MiB output cap. */
const FILLING_AGENT = `#!/bin/sh\nexec yes "$(printf '%1000s' x)"\n`;
/** Writes the `exit` file of its task itself, then prints for ever. */
const DEADLINE_LIFTING_AGENT = `#!/bin/sh\nfor t in "$HOME"/.sandboxed/tasks/*/; do echo 0 > "$t/exit"; done\nwhile :; do echo '{"type":"system"}'; sleep 0.2; done\n`;

const EVENTS_PER_S = 100;
let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({ env: { ...TASK_DAEMON_ENV, SANDBOXD_TASK_HEALTH_WAIT_S: '0', SANDBOXD_TASK_EVENTS_PER_S: String(EVENTS_PER_S), SANDBOXD_TASK_MAX_OUTPUT_MB: '1' } });
});
afterAll(async () => {
  await d?.cleanup();
});

describe('agent task abuse', () => {
  it('redaction: one pass per string for all secrets, longest first, and at most MAX_SECRETS of them', () => {
    const env: Record<string, string> = { A_TOKEN: 'abcdefgh', B_TOKEN: 'abcdefghijkl', PLAIN: 'abcdefghijklmnop' };
    for (let i = 0; i < 600; i++) env[`K${i}_KEY`] = `secret-${String(i).padStart(4, '0')}-value`;
    expect(secretValues(env)).toHaveLength(MAX_SECRETS);
    const r = redactor({ A_TOKEN: 'abcdefgh', B_TOKEN: 'abcdefghijkl', C_KEY: 'a.b*c+d?e(f)' });
    expect(r({ x: ['abcdefghijkl abcdefgh', 'za.b*c+d?e(f)z', 'aXbXcXdXeXfX'] })).toEqual({ x: ['[redacted] [redacted]', 'z[redacted]z', 'aXbXcXdXeXfX'] });
  });

  it('lines that yield no event are charged to the events-per-second rate: 40,000 ignored lines take seconds to read, not a burst', async () => {
    const id = await sandboxWithStandIn(d, IGNORED_LINES_AGENT);
    const t0 = Date.now();
    const submit = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'ignored lines', agent: 'claude', timeout_s: 120 });
    expect(submit.status, submit.text).toBe(202);
    const task = await waitForTask(d, id, submit.body.id, 100_000);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`[task-abuse] 40,000 ignored lines at ${EVENTS_PER_S} events/s: the task took ${seconds.toFixed(1)} s`);
    expect(task.status, JSON.stringify(task).slice(0, 500)).toBe('succeeded');
    // 40 lines per event of the rate, one second's burst: at least ~9 s to read; unthrottled it takes ~1 s.
    expect(seconds).toBeGreaterThan(6);
  }, 120_000);

  it('an agent whose output file passes SANDBOXD_TASK_MAX_OUTPUT_MB is killed and the task fails output_too_large; the file stays at the cap', async () => {
    const id = await sandboxWithStandIn(d, FILLING_AGENT);
    const submit = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'fill', agent: 'claude', timeout_s: 120 });
    expect(submit.status, submit.text).toBe(202);
    const task = await waitForTask(d, id, submit.body.id, 100_000);
    expect(task, JSON.stringify(task).slice(0, 500)).toMatchObject({ status: 'failed', reason: 'output_too_large' });
    expect(task.error).toContain('SANDBOXD_TASK_MAX_OUTPUT_MB');
    const size = await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', `wc -c < ~/.sandboxed/tasks/${submit.body.id}/out.jsonl; pgrep -x yes || true`] });
    const [bytes, ...left] = String(size.body.stdout).trim().split('\n');
    expect(Number(bytes)).toBeLessThanOrEqual((1 << 20) + 1);
    expect(left.filter(Boolean)).toEqual([]);
  }, 120_000);

  it('an agent that writes its own exit file cannot lift its deadline across a graceful restart: the task ends agent_timeout', async () => {
    const id = await sandboxWithStandIn(d, DEADLINE_LIFTING_AGENT);
    const submit = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'forever', agent: 'claude', timeout_s: 15 });
    expect(submit.status, submit.text).toBe(202);
    // The restart comes only once the agent has written its own exit file: that is the attempt under test.
    const exitWritten = async () => (await execIn(id, ['sh', '-c', `cat /home/sandbox/.sandboxed/tasks/${submit.body.id}/exit`])).output.trim() === '0';
    expect(await eventually(exitWritten, 15_000, 200)).toBe(true);
    await d.stop();
    d = await new Daemon({ reuse: d }).start();
    // Deadline at 15 s from the submit, plus the cancel grace: well before 60 s. Unfixed, it ran for ever.
    const task = await waitForTask(d, id, submit.body.id, 60_000);
    expect(task, JSON.stringify(task).slice(0, 500)).toMatchObject({ status: 'failed', reason: 'agent_timeout' });
  }, 120_000);
});
