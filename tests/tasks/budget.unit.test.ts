import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BYTES_PER_TOKEN, EventBudget, LINES_PER_TOKEN, RESERVED_EVENTS } from '../../src/tasks/budget.ts';
import type { TaskEventBody } from '../../src/model/task-events.ts';

const msg = (text: string): TaskEventBody => ({ type: 'message', role: 'assistant', text });
const many = (n: number, text = 'x') => Array.from({ length: n }, (_, i) => msg(`${text}${i}`));
const budget = (o: Partial<ConstructorParameters<typeof EventBudget>[0]> = {}) =>
  new EventBudget({ maxEvents: 100, maxBytes: 1 << 20, perSecond: 1000, stored: 0, storedBytes: 0, ...o });

describe('the event budget of a task', () => {
  // Only the clock is faked: the budget reads Date.now() and nothing else of time.
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it(`stores the agent's events up to the cap less ${RESERVED_EVENTS} reserved for the daemon's own, then one truncated event naming the variable, then none`, () => {
    const b = budget({ maxEvents: 100 });
    const kept = b.admit(many(200));
    expect(kept).toHaveLength(100 - RESERVED_EVENTS + 1);
    expect(kept.slice(0, -1)).toEqual(many(100 - RESERVED_EVENTS));
    expect(kept.at(-1)).toMatchObject({ type: 'truncated', reason: 'event_limit', limit: 100 });
    expect((kept.at(-1) as { message: string }).message).toContain('SANDBOXD_TASK_MAX_EVENTS (100 events)');
    expect(b.truncated).toBe(true);
    expect(b.admit(many(5))).toEqual([]);
  });

  it('cuts at the byte cap when events are large, saying byte_limit and SANDBOXD_TASK_MAX_EVENT_BYTES', () => {
    const big = msg('é'.repeat(1000)); // 2,000-odd bytes of JSON
    const size = Buffer.byteLength(JSON.stringify(big));
    const b = budget({ maxEvents: 10_000, maxBytes: size * 3 + 10 });
    const kept = b.admit([big, big, big, big, big]);
    expect(kept.slice(0, 3)).toEqual([big, big, big]);
    expect(kept[3]).toMatchObject({ type: 'truncated', reason: 'byte_limit', limit: size * 3 + 10 });
    expect((kept[3] as { message: string }).message).toContain('SANDBOXD_TASK_MAX_EVENT_BYTES');
    expect(kept).toHaveLength(4);
  });

  it('starts truncated when a previous daemon already stored past either cap (re-attach), and stores nothing more', () => {
    expect(budget({ maxEvents: 100, stored: 100 - RESERVED_EVENTS + 1 }).admit(many(1))).toEqual([]);
    expect(budget({ maxBytes: 1000, storedBytes: 1001 }).admit(many(1))).toEqual([]);
    // Exactly at the limit is not yet past it: the next event is the truncated marker.
    const at = budget({ maxEvents: 100, stored: 100 - RESERVED_EVENTS });
    expect(at.truncated).toBe(false);
    expect(at.admit(many(1))).toMatchObject([{ type: 'truncated', reason: 'event_limit' }]);
  });

  it("counts the daemon's own stored events towards the cap", () => {
    const b = budget({ maxEvents: 100 });
    b.stored(90);
    expect(b.admit(many(10))).toHaveLength(100 - RESERVED_EVENTS - 90 + 1);
    // A lower sequence number never moves the count back.
    const c = budget({ maxEvents: 100, stored: 50 });
    c.stored(10);
    expect(c.admit(many(100))).toHaveLength(100 - RESERVED_EVENTS - 50 + 1);
  });

  it('asks the reader to wait once a second\'s worth of events is spent, for as long as the rate needs, and refills with time', () => {
    const b = budget({ maxEvents: 1_000_000, perSecond: 100 });
    expect(b.waitMs()).toBe(0);
    b.admit(many(100));
    expect(b.waitMs()).toBe(0);
    b.admit(many(50)); // 50 events into debt at 100/s
    expect(b.waitMs()).toBe(500);
    vi.setSystemTime(Date.now() + 250);
    expect(b.waitMs()).toBe(250);
    vi.setSystemTime(Date.now() + 250);
    expect(b.waitMs()).toBe(0);
    // The bucket holds one second at most: a long quiet spell does not bank a burst.
    vi.setSystemTime(Date.now() + 60_000);
    b.admit(many(100));
    b.admit(many(1));
    expect(b.waitMs()).toBe(10);
  });

  it(`charges reading lines that make no event: ${LINES_PER_TOKEN} lines or ${BYTES_PER_TOKEN} bytes cost one event`, () => {
    const lines = budget({ perSecond: 10 });
    for (let i = 0; i < LINES_PER_TOKEN * 20; i++) lines.read(0);
    // 20 events into debt at 10/s (the sum of 800 fractions may round up by a millisecond).
    expect(lines.waitMs()).toBeGreaterThanOrEqual(1000);
    expect(lines.waitMs()).toBeLessThanOrEqual(1001);
    const bytes = budget({ perSecond: 10 });
    bytes.read(BYTES_PER_TOKEN * 20);
    // 20 events for the bytes and 1/40 for the line itself, less the 10 in the bucket: 10.025 events at 10/s.
    expect(bytes.waitMs()).toBe(1003);
    // A 300 MiB line, read as one, is a long wait, not an overflow or a negative one.
    const huge = budget({ perSecond: 500 });
    huge.read(300 << 20);
    expect(huge.waitMs()).toBeGreaterThan(8000);
    expect(Number.isFinite(huge.waitMs())).toBe(true);
  });
});
