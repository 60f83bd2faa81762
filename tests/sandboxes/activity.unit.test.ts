import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newId } from '../../src/ids.ts';
import { Activity } from '../../src/sandboxes/activity.ts';
import { openStore } from '../../src/store/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-activity-'));
const store = openStore(dir, 1000);
afterAll(() => (store.db.close(), rmSync(dir, { recursive: true, force: true })));

function sandbox(): string {
  return store.sandboxes.insert({
    id: newId(), name: null, owner: 'local', status: 'running', reason: 'created', image: 'img', ports: [3000], env: {}, memoryMb: 256, cpus: 1, pids: 64,
    idlePolicy: 'sleep', idleTimeoutS: 60, labels: {}, external: {}, visibility: 'public', portVisibility: {}, egress: 'internet', diskMb: null, createdAt: 0,
  }).id;
}
const lastActive = (id: string) => store.sandboxes.get(id)!.lastActiveAt;

describe('activity writes on the main thread', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('writes the first use after a quiet spell at once, so the idle reaper never misses it', () => {
    const id = sandbox();
    new Activity(store.activity).touch(id, 'exec');
    expect(lastActive(id)).toBe(1_000_000);
    expect(store.activity.lastBySource(id)).toEqual({ exec: 1_000_000 });
  });

  it('coalesces the uses that follow into one transaction a second, per sandbox and source, and writes them all', () => {
    const [a, b] = [sandbox(), sandbox()];
    const activity = new Activity(store.activity);
    activity.touch(a, 'gateway');
    activity.touch(b, 'gateway');
    vi.advanceTimersByTime(1500);
    activity.touch(a, 'gateway');
    activity.touch(a, 'exec');
    activity.touch(b, 'terminal');
    // Not yet written: they wait for the flush.
    expect(lastActive(a)).toBe(1_000_000);
    vi.advanceTimersByTime(1000);
    expect(store.activity.lastBySource(a)).toEqual({ gateway: 1_001_500, exec: 1_001_500 });
    expect(store.activity.lastBySource(b)).toEqual({ gateway: 1_000_000, terminal: 1_001_500 });
    expect(lastActive(a)).toBe(1_001_500);
  });

  it('drops a second use of the same source within a second, and flush() writes what is pending at shutdown', () => {
    const id = sandbox();
    const activity = new Activity(store.activity);
    activity.touch(id, 'gateway');
    vi.advanceTimersByTime(400);
    activity.touch(id, 'gateway');
    vi.advanceTimersByTime(800);
    activity.touch(id, 'gateway');
    activity.flush();
    expect(store.activity.lastBySource(id)).toEqual({ gateway: 1_001_200 });
  });

  it('records nothing for a sandbox purged before its coalesced use is flushed', () => {
    const id = sandbox();
    const activity = new Activity(store.activity);
    activity.touch(id, 'gateway');
    vi.advanceTimersByTime(1500);
    activity.touch(id, 'exec');
    store.sandboxes.delete(id);
    activity.flush();
    expect(store.activity.lastBySource(id)).toEqual({});
    expect(activity.dropped.activity).toBe(0);
  });

  it('forgets the throttle keys of sandboxes no longer used, so the maps do not grow with every sandbox ever seen', () => {
    const activity = new Activity(store.activity);
    const ids = Array.from({ length: 200 }, () => sandbox());
    for (const id of ids) activity.touch(id, 'gateway');
    expect(activity.throttled).toBe(400);
    vi.advanceTimersByTime(11_000);
    activity.touch(ids[0]!, 'gateway');
    expect(activity.throttled).toBe(2);
  });
});
