import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../src/deadline.ts';

describe('withDeadline', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('answers what the promise answers in time, and clears its timer', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, () => new Error('late'))).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('own')), 1000, () => new Error('late'))).rejects.toThrow('own');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with the named error once the time is up, and not before', async () => {
    const never = new Promise<number>(() => undefined);
    let settled: unknown;
    void withDeadline(never, 1000, () => new Error('no answer within 1 s')).catch((err: Error) => (settled = err.message));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe('no answer within 1 s');
  });
});
