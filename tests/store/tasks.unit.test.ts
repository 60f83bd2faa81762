import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { openStore } from '../../src/store/index.ts';
import { addUsage, ZERO_USAGE, type TaskOutcome } from '../../src/model/task-events.ts';

// The task phase machine runs in threads/tasks.ts (a worker class, not a pure function); what it relies on
// is here: each phase is committed with the events that announce it, on a real SQLite file.
const dir = mkdtempSync(join(tmpdir(), 'sandboxed-task-store-'));
const store = openStore(dir, 1000);
afterAll(() => (store.db.close(), rmSync(dir, { recursive: true, force: true })));

function sandbox(): string {
  return store.sandboxes.insert({
    id: newId(), name: null, owner: 'local', status: 'running', reason: 'created', image: 'img', ports: [3000], env: {}, memoryMb: 256, cpus: 1, pids: 64,
    idlePolicy: 'sleep', idleTimeoutS: 60, labels: {}, external: {}, visibility: 'public', portVisibility: {}, egress: 'internet', diskMb: null, createdAt: Date.now(),
  }).id;
}
function task(sandboxId = sandbox()): string {
  const id = newId();
  expect(store.tasks.insert({ id, sandboxId, owner: 'local', agent: 'claude', model: null, prompt: 'hi', timeoutS: 60, createdAt: Date.now() })).toBe(true);
  return id;
}
const outcome = (o: Partial<TaskOutcome> = {}): TaskOutcome => ({
  status: 'succeeded', reason: null, error: null, message: 'done', files_changed: [], usage: ZERO_USAGE, build: null, preview: null, checkpoint: null, duration_ms: 5, ...o,
});

describe('the task record the phase machine moves forward', () => {
  it('starts running in the checkpoint phase; each phase is committed with the events that announce it, numbered from 1', () => {
    const id = task();
    expect(store.tasks.get(id)).toMatchObject({ status: 'running', phase: 'checkpoint', linesRead: 0, events: 0, checkpoint: null });
    store.tasks.append(id, [{ type: 'status', phase: 'checkpoint' }]);
    const moved = store.tasks.append(id, [{ type: 'status', phase: 'agent_running' }], { phase: 'agent_running', checkpoint: 'abc123' });
    expect(moved).toMatchObject([{ seq: 2, type: 'status', phase: 'agent_running' }]);
    store.tasks.append(id, [{ type: 'message', role: 'assistant', text: 'é😀\u0000' }, { type: 'tool', name: 'write', status: 'started', path: 'a.txt' }], { linesRead: 7 });
    expect(store.tasks.get(id)).toMatchObject({ phase: 'agent_running', checkpoint: 'abc123', linesRead: 7, events: 4 });
    store.tasks.append(id, [{ type: 'build', ok: true }, { type: 'status', phase: 'health_check' }], { phase: 'health_check' });
    expect(store.tasks.get(id)).toMatchObject({ phase: 'health_check', checkpoint: 'abc123', linesRead: 7, events: 6 });
    expect(store.tasks.eventsAfter(id, 0).map((e) => [e.seq, e.type])).toEqual([[1, 'status'], [2, 'status'], [3, 'message'], [4, 'tool'], [5, 'build'], [6, 'status']]);
    expect(store.tasks.eventsAfter(id, 0)[2]).toMatchObject({ type: 'message', text: 'é😀\u0000' });
    // A re-attach reads the build result back instead of running it again.
    expect(store.tasks.lastOfType(id, 'build')).toMatchObject({ seq: 5, ok: true });
  });

  it('ends a task once: the done event comes last, and nothing is appended after it', () => {
    const id = task();
    store.tasks.append(id, [{ type: 'status', phase: 'checkpoint' }]);
    expect(store.tasks.finish(id, outcome())).toMatchObject({ seq: 2, type: 'done', result: { status: 'succeeded' } });
    expect(store.tasks.finish(id, outcome({ status: 'failed' }))).toBeUndefined();
    expect(store.tasks.append(id, [{ type: 'status', phase: 'build_check' }], { phase: 'build_check' })).toEqual([]);
    expect(store.tasks.get(id)).toMatchObject({ status: 'succeeded', phase: 'checkpoint', events: 2, result: { status: 'succeeded' } });
  });

  it('allows one running task per sandbox, and another once it has ended', () => {
    const sb = sandbox();
    const first = task(sb);
    expect(store.tasks.insert({ id: newId(), sandboxId: sb, owner: 'local', agent: 'claude', model: null, prompt: 'x', timeoutS: 60, createdAt: Date.now() })).toBe(false);
    store.tasks.finish(first, outcome({ status: 'cancelled', reason: 'cancelled' }));
    task(sb);
  });

  it('keeps the first reason a stop was asked for', () => {
    const id = task();
    store.tasks.requestStop(id, 'agent_timeout');
    store.tasks.requestStop(id, 'cancelled');
    expect(store.tasks.get(id)?.cancelReason).toBe('agent_timeout');
  });

  it('pages replays by count and by bytes, never splitting an event', () => {
    const id = task();
    store.tasks.append(id, Array.from({ length: 10 }, (_, i) => ({ type: 'message' as const, role: 'assistant' as const, text: String(i).repeat(1000) })));
    expect(store.tasks.eventsAfter(id, 3, 4).map((e) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(store.tasks.eventsAfter(id, 0, 100, 2500).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(store.tasks.eventsAfter(id, 0, 100, 1).map((e) => e.seq)).toEqual([1]);
    expect(store.tasks.eventsAfter(id, 10)).toEqual([]);
    expect(store.tasks.eventBytes(id)).toBeGreaterThan(10_000);
  });

  it('sums usage across turns, rounding cost to a millionth of a dollar', () => {
    const turn = { input: 10, output: 5, cache_read: 2, cache_write: 1, cost: 0.1 };
    expect([turn, turn, turn].reduce(addUsage, ZERO_USAGE)).toEqual({ input: 30, output: 15, cache_read: 6, cache_write: 3, cost: 0.3 });
  });
});
