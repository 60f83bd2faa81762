import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Daemon, docker, startDaemon } from '../support/daemon.ts';
import {
  TASK_DAEMON_ENV, agentProcesses, claudeEnv, opencodeEnv, readEvents, startFakeModel, waitForTask,
} from '../support/tasks.ts';

const KEY = 'sk-ant-test-0123456789abcdef';
let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({ env: TASK_DAEMON_ENV });
});
afterAll(async () => {
  await d?.cleanup();
});

async function sandbox(env: Record<string, string> = {}): Promise<string> {
  const r = await d.api('POST', '/v1/sandboxes', { env });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function submit(id: string, body: Record<string, unknown>): Promise<string> {
  const r = await d.api('POST', `/v1/sandboxes/${id}/tasks`, body);
  expect(r.status, r.text).toBe(202);
  expect(r.body).toEqual({ id: r.body.id, status: 'running', events_url: `/v1/sandboxes/${id}/tasks/${r.body.id}/events` });
  return r.body.id;
}

const types = (events: { event: string }[]) => events.map((e) => e.event);

describe('agent tasks with the real CLIs against a scripted model', () => {
  it('Claude Code writes a file: the stream shows message, tool and done in order, the result has files_changed, the message and usage', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4100, 'ok');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4100) });
    const { events, contentType } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(contentType).toMatch(/^text\/event-stream/);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    const order = types(events);
    expect(order[0]).toBe('status');
    expect(order.at(-1)).toBe('done');
    expect(order.indexOf('message')).toBeLessThan(order.indexOf('tool'));
    expect(order.lastIndexOf('tool')).toBeLessThan(order.indexOf('done'));
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.phase)).toEqual(['checkpoint', 'agent_running', 'build_check', 'health_check']);
    expect(events.find((e) => e.event === 'tool')!.data).toMatchObject({ name: 'Write', status: 'started', path: '/home/sandbox/workspace/app/hello.txt' });
    expect(events.some((e) => e.event === 'tool' && e.data.status === 'completed')).toBe(true);

    const task = await waitForTask(d, id, taskId);
    expect(task).toMatchObject({ status: 'succeeded', reason: null, agent: 'claude', phase: 'health_check' });
    expect(task.result).toMatchObject({ status: 'succeeded', message: 'Done: I wrote hello.txt.', files_changed: ['hello.txt'], build: null, preview: { port: 3000, status: null } });
    expect(task.result.checkpoint).toMatch(/^[0-9a-f]{40}$/);
    expect(task.result.usage.input).toBeGreaterThan(0);
    expect(task.result.usage.output).toBeGreaterThan(0);
    expect(task.result.usage.cost).toBeGreaterThan(0);
    expect(events.at(-1)!.data.result).toEqual(task.result);
    const file = await d.api('GET', `/v1/sandboxes/${id}/files?path=hello.txt`);
    expect(file.text).toBe('hello from the agent\n');

    // The provider key reached the agent (the fake model accepted the run) but nothing we keep or print.
    const db = new (process.getBuiltinModule('node:sqlite').DatabaseSync)(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
    const stored = JSON.stringify([db.prepare('SELECT * FROM task_events').all(), db.prepare('SELECT * FROM tasks').all(), db.prepare('SELECT * FROM audit_log').all()]);
    db.close();
    expect(stored).toContain('task.create');
    expect(stored).not.toContain(KEY);
    expect(d.output).not.toContain(KEY);
  });

  it('OpenCode writes a file, and the build and preview checks run on the app it leaves', async () => {
    const id = await sandbox();
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'server.js', content: 'require("http").createServer((q, s) => s.end("up")).listen(process.env.PORT);\n' });
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'package.json', content: JSON.stringify({ name: 'app', private: true, scripts: { dev: 'node server.js', build: 'echo built-ok' } }) });
    await startFakeModel(d, id, 4101, 'ok');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'opencode', env: opencodeEnv(4101) });
    const { events } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    const order = types(events);
    expect(order.indexOf('message')).toBeLessThan(order.indexOf('tool'));
    expect(order.at(-1)).toBe('done');
    expect(events.find((e) => e.event === 'tool')!.data).toEqual({ seq: expect.any(Number), type: 'tool', at: expect.any(String), name: 'write', status: 'completed', path: '/home/sandbox/workspace/app/hello.txt' });
    expect(events.find((e) => e.event === 'build')!.data).toMatchObject({ ok: true });
    const task = await waitForTask(d, id, taskId);
    expect(task.status).toBe('succeeded');
    expect(task.result).toMatchObject({ message: 'Done: I wrote hello.txt.', files_changed: ['hello.txt'], build: { ok: true }, preview: { port: 3000, status: 200 } });
    expect(task.result.usage).toMatchObject({ input: 200, output: 40 });

    // The checkpoint is a real commit: git diff against it shows the task's work.
    const diff = await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', `git diff --stat ${task.result.checkpoint} -- . && git status --porcelain`] });
    expect(diff.body.stdout).toContain('hello.txt');
  });

  it('a client that drops after 3 events and reconnects with Last-Event-ID (or ?since=) gets exactly the rest; the WebSocket stream matches; past done, both end at once', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4102, 'ok', 1500);
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4102) });
    const url = `/v1/sandboxes/${id}/tasks/${taskId}/events`;
    const first = await readEvents(d, url, { max: 3 });
    expect(first.events.map((e) => e.id)).toEqual([1, 2, 3]);
    const rest = await readEvents(d, url, { headers: { 'Last-Event-ID': '3' } });
    const all = await readEvents(d, url);
    expect(all.events.at(-1)!.event).toBe('done');
    expect([...first.events, ...rest.events]).toEqual(all.events);
    const since = await readEvents(d, `${url}?since=${all.events.length - 2}`);
    expect(since.events).toEqual(all.events.slice(-2));

    const ws = new WebSocket(`${d.url.replace('http', 'ws')}${url}?since=1`);
    const frames: any[] = [];
    ws.on('message', (m) => frames.push(JSON.parse(String(m))));
    const code = await new Promise<number>((res) => ws.on('close', res));
    expect(code).toBe(1000);
    expect(frames).toEqual(all.events.slice(1).map((e) => e.data));

    // Past `done` (an EventSource reconnecting with the last id it saw): 204 at once, never a stream held open.
    const last = String(all.events.at(-1)!.id);
    const after = await fetch(`${d.url}${url}`, { headers: { 'Last-Event-ID': last }, signal: AbortSignal.timeout(5000) });
    expect(after.status).toBe(204);
    expect((await fetch(`${d.url}${url}?since=${last}`, { signal: AbortSignal.timeout(5000) })).status).toBe(204);
    const wsAfter = new WebSocket(`${d.url.replace('http', 'ws')}${url}?since=${last}`);
    const afterFrames: unknown[] = [];
    wsAfter.on('message', (m) => afterFrames.push(m));
    expect(await new Promise<number>((res, rej) => {
      wsAfter.on('close', res);
      setTimeout(() => rej(new Error('the WebSocket past done stayed open')), 5000).unref();
    })).toBe(1000);
    expect(afterFrames).toEqual([]);

    const bad = await d.api('GET', url, undefined, { 'Last-Event-ID': 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('Last-Event-ID');
  });

  it('one task at a time: a second submit is 409 task_in_progress; cancel ends the first as cancelled with no agent process left', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4103, 'hang');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4103) });
    await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`, { max: 2 }); // agent_running
    const second = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'again', agent: 'opencode' });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'task_in_progress', retryable: true, details: { task_id: taskId } });
    const list = await d.api('GET', `/v1/sandboxes/${id}/tasks`);
    expect(list.body.data.map((t: any) => t.id)).toEqual([taskId]);

    expect(await agentProcesses(d, id)).toContain('claude');
    // A quiet stream carries heartbeats (every second in these tests, 15 s by default).
    const ac = new AbortController();
    const quiet = await fetch(`${d.url}/v1/sandboxes/${id}/tasks/${taskId}/events?since=2`, { signal: ac.signal });
    const reader = quiet.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    expect(first).toBe(': heartbeat\n\n');
    // A running task holds its sandbox awake.
    expect((await d.api('GET', `/v1/sandboxes/${id}/activity`)).body.leases.map((l: any) => l.kind)).toEqual(['task']);
    const t0 = Date.now();
    const cancel = await d.api('POST', `/v1/sandboxes/${id}/tasks/${taskId}/cancel`);
    expect(cancel.status).toBe(202);
    const task = await waitForTask(d, id, taskId, 20_000);
    expect(Date.now() - t0).toBeLessThan(3000 + 3000); // the grace period (3 s here) and the bookkeeping
    expect(task).toMatchObject({ status: 'cancelled', reason: 'cancelled' });
    expect(await agentProcesses(d, id)).toBe('');
    expect((await d.api('GET', `/v1/sandboxes/${id}/activity`)).body.leases).toEqual([]);
    const { events } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(events.at(-1)!.data.result.status).toBe('cancelled');

    // The sandbox is free again.
    const next = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4103), timeout_s: 2 });
    expect(next.status).toBe(202);
    const timedOut = await waitForTask(d, id, next.body.id);
    expect(timedOut).toMatchObject({ status: 'failed', reason: 'agent_timeout' });
    expect(timedOut.error).toContain('timeout_s');
    expect(await agentProcesses(d, id)).toBe('');
  });

  it('a model error ends the task failed/agent_error with the provider\'s message, for both agents', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4104, '401');
    await startFakeModel(d, id, 4105, '500');
    const oc = await submit(id, { prompt: 'write hello.txt', agent: 'opencode', env: opencodeEnv(4104) });
    const ocTask = await waitForTask(d, id, oc);
    expect(ocTask).toMatchObject({ status: 'failed', reason: 'agent_error' });
    expect(ocTask.error).toContain('fake provider: Incorrect API key provided');
    const cl = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4105) });
    const clTask = await waitForTask(d, id, cl);
    expect(clTask).toMatchObject({ status: 'failed', reason: 'agent_error' });
    expect(clTask.error).toContain('fake provider: upstream exploded');
    const list = await d.api('GET', `/v1/sandboxes/${id}/tasks?limit=1`);
    expect(list.body.data.map((t: any) => t.id)).toEqual([cl]);
    const page2 = await d.api('GET', `/v1/sandboxes/${id}/tasks?limit=1&cursor=${list.body.next_cursor}`);
    expect(page2.body).toMatchObject({ data: [{ id: oc }], next_cursor: null });
  });

  it('purging the sandbox of a running task ends the streams following it', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4111, 'hang');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4111) });
    const following = readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await d.api('DELETE', `/v1/sandboxes/${id}?purge=true`)).status).toBe(200);
    const t0 = Date.now();
    const { events } = await following;
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(events.map((e) => e.event)).toContain('status');
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks/${taskId}`)).status).toBe(404);
  });

  it('rejects bad task requests with the field named, before waking or recording anything', async () => {
    const id = await sandbox();
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    const cases: [unknown, string][] = [
      [{ prompt: 'x', agent: 'aider' }, 'body.agent'],
      [{ agent: 'claude' }, 'body.prompt'],
      [{ prompt: '', agent: 'claude' }, 'body.prompt'],
      [{ prompt: 'x', agent: 'claude', extra: 1 }, 'body.extra'],
      [{ prompt: 'x', agent: 'claude', timeout_s: 0 }, 'body.timeout_s'],
      [{ prompt: 'x', agent: 'claude', timeout_s: 10 ** 7 }, 'body.timeout_s'],
      [{ prompt: 'x', agent: 'claude', model: '--help' }, 'body.model'],
      [{ prompt: 'x', agent: 'claude', env: { 'BAD-NAME': 'v' } }, 'body.env'],
      [{ prompt: 'x', agent: 'opencode', env: { OPENCODE_CONFIG_CONTENT: '{nope' } }, 'body.env.OPENCODE_CONFIG_CONTENT'],
      [{ prompt: 'x'.repeat(40000), agent: 'claude' }, 'body.prompt'],
    ];
    for (const [body, field] of cases) {
      const r = await d.api('POST', `/v1/sandboxes/${id}/tasks`, body);
      expect(r.status, JSON.stringify(body).slice(0, 100)).toBe(400);
      expect(r.body.error.message).toContain(field);
    }
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('stopped');
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks`)).body.data).toEqual([]);
    expect((await d.api('POST', '/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV/tasks', { prompt: 'x', agent: 'claude' })).status).toBe(404);
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV`)).status).toBe(404);
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks/not-a-task`)).status).toBe(400);
  });
});

describe('tasks across stops, deletes and daemon restarts', () => {
  it('a stopped sandbox is woken on submit; events and results stay readable after stop, delete and a restart', async () => {
    // No model answers here: the agent fails fast, which is as good a result to keep as any.
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4999) });
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('running');
    const task = await waitForTask(d, id, taskId);
    expect(task, JSON.stringify(task)).toMatchObject({ status: 'failed', reason: 'agent_error' });
    const { events } = await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(events.at(-1)!.event).toBe('done');

    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    await d.api('DELETE', `/v1/sandboxes/${id}`);
    await d.stop();
    d = await new Daemon({ reuse: d }).start();
    expect((await d.api('GET', `/v1/sandboxes/${id}/tasks/${taskId}`)).body).toEqual(task);
    expect((await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`)).events).toEqual(events);
  });

  it.each([['kill -9', true, 4107], ['SIGTERM (a graceful restart)', false, 4110]] as const)('%s of the daemon mid-task: the restarted daemon re-attaches and the task ends with every event exactly once', async (_how, hard, port) => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, port, 'ok', 4000);
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(port) });
    const url = `/v1/sandboxes/${id}/tasks/${taskId}/events`;
    // Up to the completed write: the agent is now waiting for the (slow) final answer.
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      const { events } = await readEvents(d, url, { max: 100, timeoutMs: 300 });
      if (events.some((e) => e.event === 'tool' && e.data.status === 'completed')) {
        seen.push(...events.map((e) => e.id));
        break;
      }
    }
    expect(seen.length).toBeGreaterThan(3);
    await d.stop(hard);
    d = await new Daemon({ reuse: d }).start();
    const task = await waitForTask(d, id, taskId);
    expect(task.status, JSON.stringify(task)).toBe('succeeded');
    expect(task.result.message).toBe('Done: I wrote hello.txt.');
    const { events } = await readEvents(d, url);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.phase)).toEqual(['checkpoint', 'agent_running', 'build_check', 'health_check']);
    expect(events.filter((e) => e.event === 'message').map((e) => e.data.text)).toEqual(['I will write the file.', 'Done: I wrote hello.txt.']);
    expect(events.filter((e) => e.event === 'tool').map((e) => e.data.status)).toEqual(['started', 'completed']);
    expect(readFileSync(join(d.dataDir, 'workspaces', id, 'workspace/app/hello.txt'), 'utf8')).toBe('hello from the agent\n');
  });

  it('kill -9 during the build check: the restarted daemon finishes the checks without repeating an event', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'package.json', content: JSON.stringify({ name: 'app', private: true, scripts: { build: 'sleep 3 && echo built' } }) });
    await startFakeModel(d, id, 4109, 'ok');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4109) });
    const url = `/v1/sandboxes/${id}/tasks/${taskId}/events`;
    for (let i = 0; i < 200; i++) {
      const { events } = await readEvents(d, url, { max: 100, timeoutMs: 300 });
      if (events.some((e) => e.event === 'status' && e.data.phase === 'build_check')) break;
    }
    await d.stop(true);
    d = await new Daemon({ reuse: d }).start();
    const task = await waitForTask(d, id, taskId);
    expect(task.status, JSON.stringify(task)).toBe('succeeded');
    expect(task.result).toMatchObject({ message: 'Done: I wrote hello.txt.', build: { ok: true }, files_changed: ['hello.txt'] });
    const { events } = await readEvents(d, url);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.phase)).toEqual(['checkpoint', 'agent_running', 'build_check', 'health_check']);
    expect(events.filter((e) => e.event === 'build')).toHaveLength(1);
    expect(events.filter((e) => e.event === 'message')).toHaveLength(2);
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
  });

  it('a task whose sandbox is gone when the daemon restarts is failed with a reason, never left running', async () => {
    const id = await sandbox({ ANTHROPIC_API_KEY: KEY });
    await startFakeModel(d, id, 4108, 'hang');
    const taskId = await submit(id, { prompt: 'write hello.txt', agent: 'claude', env: claudeEnv(4108) });
    await readEvents(d, `/v1/sandboxes/${id}/tasks/${taskId}/events`, { max: 2 });
    await d.stop(true);
    const containers = await d.containers();
    const mine = containers.find((c) => c.Labels['sandboxed.id'] === id)!;
    await docker.getContainer(mine.Id).stop({ t: 0 });
    d = await new Daemon({ reuse: d }).start();
    const task = await waitForTask(d, id, taskId, 30_000);
    expect(task).toMatchObject({ status: 'failed', reason: 'sandbox_unavailable' });
    expect(task.error).toMatch(/sandbox/);
  });
});
