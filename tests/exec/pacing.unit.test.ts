import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutputPacer } from '../../src/exec/pacing.ts';

const MiB = 1024 * 1024;

describe('the per-sandbox output pace', () => {
  beforeEach(() => void vi.useFakeTimers({ now: 0 }));
  afterEach(() => void vi.useRealTimers());

  /** Credits `chunk`-byte writes of one sandbox as fast as they are allowed for `ms`; answers the bytes credited. */
  const creditedOver = (p: OutputPacer, id: string, chunk: number, ms: number) => {
    let credited = 0;
    let waiting = 0;
    const offer = () => {
      while (waiting < 16) {
        waiting++;
        p.spend(id, chunk, () => ((credited += chunk), waiting--));
      }
    };
    for (let t = 0; t < ms; t += 5) {
      offer();
      vi.advanceTimersByTime(5);
    }
    return credited;
  };

  it('lets a sandbox send its burst at once, then holds it to its rate', () => {
    const p = new OutputPacer(4 * MiB, { burst: 1 * MiB, now: Date.now });
    const got = creditedOver(p, 'a', 64 * 1024, 2000);
    // 1 MiB of burst plus 2 s at 4 MiB/s, give or take one chunk in flight.
    expect(got).toBeGreaterThanOrEqual(9 * MiB - 64 * 1024);
    expect(got).toBeLessThanOrEqual(9 * MiB + 2 * 64 * 1024);
  });

  it('paces each sandbox on its own: a flooding one does not slow another', () => {
    const p = new OutputPacer(4 * MiB, { burst: 1 * MiB, now: Date.now });
    let quiet = 0;
    const flood = () => creditedOver(p, 'loud', 64 * 1024, 1000);
    p.spend('quiet', 1000, () => (quiet += 1000));
    expect(quiet).toBe(1000); // at once, though nothing else has run yet
    flood();
    p.spend('quiet', 1000, () => (quiet += 1000));
    expect(quiet).toBe(2000);
  });

  it('credits in order, lets a chunk larger than the burst through and makes the sandbox wait it off after', () => {
    const p = new OutputPacer(1 * MiB, { burst: 64 * 1024, now: Date.now });
    const order: number[] = [];
    p.spend('a', 4 * MiB, () => order.push(0));
    p.spend('a', 10, () => order.push(1));
    p.spend('a', 10, () => order.push(2));
    expect(order).toEqual([0]);
    vi.advanceTimersByTime(3900);
    expect(order).toEqual([0]);
    vi.advanceTimersByTime(200);
    expect(order).toEqual([0, 1, 2]);
  });

  it('credits at once what comes after the debt is paid, even before the wake-up timer has run', () => {
    let now = 0;
    const p = new OutputPacer(1 * MiB, { burst: 64 * 1024, now: () => now });
    const got: number[] = [];
    p.spend('a', 128 * 1024, () => got.push(1));
    p.spend('a', 10, () => got.push(2));
    expect(got).toEqual([1]);
    now += 100; // the debt (64 KiB at 1 MiB/s, 62.5 ms) is paid; no timer has fired
    p.spend('a', 10, () => got.push(3));
    expect(got).toEqual([1, 2, 3]);
  });

  it('forgets a sandbox once it is quiet and its burst is back, and does nothing at all with pace 0', () => {
    const p = new OutputPacer(4 * MiB, { burst: 1 * MiB, now: Date.now });
    creditedOver(p, 'a', 64 * 1024, 500);
    expect(p.tracked).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(p.tracked).toBe(0);
    const off = new OutputPacer(0);
    let n = 0;
    for (let i = 0; i < 1000; i++) off.spend('a', 1 << 30, () => n++);
    expect([n, off.tracked]).toEqual([1000, 0]);
  });

  it('keeps crediting the others when one credit throws (its stream has ended)', () => {
    const p = new OutputPacer(1 * MiB, { burst: 64 * 1024, now: Date.now });
    const got: string[] = [];
    p.spend('a', 128 * 1024, () => got.push('first'));
    p.spend('a', 10, () => {
      throw new Error('port closed');
    });
    p.spend('a', 10, () => got.push('third'));
    vi.advanceTimersByTime(1000);
    expect(got).toEqual(['first', 'third']);
  });
});
