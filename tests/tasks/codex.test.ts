import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../support/daemon.ts';
import { TASK_DAEMON_ENV, agentProcesses, codexEnv, readEvents, startFakeModel, waitForTask } from '../support/tasks.ts';

// The third agent, run like the other two (tests/tasks/tasks.test.ts): the real CLI against the scripted model.
const KEY = 'sk-openai-test-0123456789abcdef';
const FILE = '/home/sandbox/workspace/app/hello.txt';
let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({ env: TASK_DAEMON_ENV });
});
afterAll(async () => {
  await d?.cleanup();
});

async function sandbox(): Promise<string> {
  const r = await d.api('POST', '/v1/sandboxes', { env: { OPENAI_API_KEY: KEY } });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function submit(id: string, body: Record<string, unknown>): Promise<string> {
  const r = await d.api('POST', `/v1/sandboxes/${id}/tasks`, body);
  expect(r.status, r.text).toBe(202);
  return r.body.id;
}

describe('Codex tasks against a scripted model', () => {
  it('Codex patches a file: the stream shows message, file_change with the path, the final message, usage and done; the task succeeds with files_changed', async () => {
    const id = await sandbox();
    await startFakeModel(d, id, 4120, 'ok');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'codex', model: 'gpt-5.5', env: codexEnv(4120) });
    const { events } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.phase)).toEqual(['checkpoint', 'agent_running', 'build_check', 'health_check']);
    const order = events.map((e) => e.event);
    expect(order.indexOf('message')).toBeLessThan(order.indexOf('tool'));
    expect(order.at(-1)).toBe('done');
    expect(events.filter((e) => e.event === 'message').map((e) => e.data.text)).toEqual(['I will write the file.', 'Done: I wrote hello.txt.']);
    expect(events.filter((e) => e.event === 'tool').map((e) => e.data)).toEqual([
      { seq: expect.any(Number), at: expect.any(String), type: 'tool', name: 'file_change', status: 'started', path: FILE },
      { seq: expect.any(Number), at: expect.any(String), type: 'tool', name: 'file_change', status: 'completed', path: FILE },
    ]);
    expect(events.find((e) => e.event === 'usage')!.data).toMatchObject({ input: 186, output: 40, cache_read: 14 });

    const task = await waitForTask(d, id, taskId);
    expect(task).toMatchObject({ status: 'succeeded', reason: null, agent: 'codex', model: 'gpt-5.5' });
    expect(task.result).toMatchObject({ status: 'succeeded', message: 'Done: I wrote hello.txt.', files_changed: ['hello.txt'], usage: { input: 186, output: 40, cache_read: 14, cache_write: 0, cost: 0 } });
    expect(events.at(-1)!.data.result).toEqual(task.result);
    expect((await d.api('GET', `/v1/sandboxes/${id}/files?path=hello.txt`)).text).toBe('hello from the agent\n');
    expect(await agentProcesses(d, id)).toBe('');

    // The key reached the model server (it accepted the run) but nothing the daemon keeps or prints.
    const db = new (process.getBuiltinModule('node:sqlite').DatabaseSync)(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
    const stored = JSON.stringify([db.prepare('SELECT * FROM task_events').all(), db.prepare('SELECT * FROM tasks').all()]);
    db.close();
    expect(stored).toContain('file_change');
    expect(stored).not.toContain(KEY);
    expect(d.output).not.toContain(KEY);
  });

  it('with a model outside its catalogue Codex writes the file with its shell, reported as command_execution', async () => {
    const id = await sandbox();
    await startFakeModel(d, id, 4121, 'ok');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'codex', model: 'fake-model', env: codexEnv(4121) });
    const task = await waitForTask(d, id, taskId);
    expect(task.status, JSON.stringify(task)).toBe('succeeded');
    expect(task.result).toMatchObject({ message: 'Done: I wrote hello.txt.', files_changed: ['hello.txt'] });
    const { events } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(events.filter((e) => e.event === 'tool').map((e) => [e.data.name, e.data.status, e.data.path])).toEqual([['command_execution', 'started', undefined], ['command_execution', 'completed', undefined]]);
  });

  it('a provider that refuses the key ends the task failed/agent_error with the provider\'s message; a bad OPENAI_BASE_URL is refused before anything runs', async () => {
    const id = await sandbox();
    const bad = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'x', agent: 'codex', env: { OPENAI_BASE_URL: 'file:///etc/passwd' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('body.env.OPENAI_BASE_URL');
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks`)).body.data).toEqual([]);

    await startFakeModel(d, id, 4122, '401');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'codex', model: 'gpt-5.5', env: codexEnv(4122) });
    const task = await waitForTask(d, id, taskId);
    expect(task).toMatchObject({ status: 'failed', reason: 'agent_error' });
    expect(task.error).toContain('fake provider: Incorrect API key provided');
  });

  it('cancel ends a running Codex task as cancelled with no Codex process left', async () => {
    const id = await sandbox();
    await startFakeModel(d, id, 4123, 'hang');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'codex', model: 'gpt-5.5', env: codexEnv(4123) });
    await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`, { max: 2 }); // agent_running
    expect(await agentProcesses(d, id)).toContain('codex');
    expect((await d.api('POST', `/v1/sandboxes/${id}/tasks/${taskId}/cancel`)).status).toBe(202);
    const task = await waitForTask(d, id, taskId, 20_000);
    expect(task).toMatchObject({ status: 'cancelled', reason: 'cancelled' });
    expect(await agentProcesses(d, id)).toBe('');
  });
});
