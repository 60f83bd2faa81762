import { describe, expect, it } from 'vitest';
import { idleVerdict } from '../../src/sandboxes/idle.ts';
import type { Lease } from '../../src/store/activity.ts';
import type { SandboxRecord } from '../../src/model/sandbox.ts';

const NOW = 1_700_000_000_000;
/** The fields of a row the idle rule reads; the rest of a record plays no part in it. */
const rec = (o: Partial<SandboxRecord> = {}) => ({ status: 'running', idlePolicy: 'sleep', idleTimeoutS: 60, lastActiveAt: NOW - 10_000, keepaliveUntil: null, ...o }) as SandboxRecord;
const lease = (kind: Lease['kind'], id: string = kind): Lease => ({ id, kind, openedAt: NOW - 1 });

describe('the idle rule', () => {
  it('stops a running sleep-policy sandbox exactly once its idle timeout has passed, and says for how long it was idle', () => {
    const r = rec({ lastActiveAt: NOW - 60_000 });
    expect(idleVerdict(r, [], NOW - 1)).toEqual({ stopNow: false, deadline: NOW, why: 'active 60 s ago; idle timeout is 60 s' });
    expect(idleVerdict(r, [], NOW)).toEqual({ stopNow: true, deadline: NOW, why: 'idle for 60 s, past its 60 s timeout' });
    expect(idleVerdict(r, [], NOW + 3_600_000)).toMatchObject({ stopNow: true, why: 'idle for 3660 s, past its 60 s timeout' });
  });

  it('never stops what is not running or is always_on, and gives no deadline for them', () => {
    for (const status of ['stopped', 'starting', 'stopping', 'destroyed', 'error', 'creating'] as const) {
      expect(idleVerdict(rec({ status, lastActiveAt: 0 }), [], NOW)).toEqual({ stopNow: false, deadline: null, why: `not running (${status})` });
    }
    expect(idleVerdict(rec({ idlePolicy: 'always_on', lastActiveAt: 0 }), [], NOW)).toEqual({ stopNow: false, deadline: null, why: 'idle_policy is always_on' });
  });

  it('keeps a sandbox with open leases awake past its deadline, naming each kind once', () => {
    const v = idleVerdict(rec({ lastActiveAt: 0 }), [lease('terminal', 'a'), lease('task'), lease('terminal', 'b')], NOW);
    expect(v).toEqual({ stopNow: false, deadline: 60_000, why: 'held awake by 3 open lease(s): terminal, task' });
  });

  it('holds a sandbox until a keepalive later than its idle deadline, then stops it', () => {
    const until = NOW + 3_600_000;
    const r = rec({ lastActiveAt: NOW - 120_000, keepaliveUntil: until });
    expect(idleVerdict(r, [], NOW)).toEqual({ stopNow: false, deadline: until, why: `keepalive until ${new Date(until).toISOString()}` });
    expect(idleVerdict(r, [], until).stopNow).toBe(true);
    // A keepalive that ended before the idle deadline changes nothing.
    expect(idleVerdict(rec({ lastActiveAt: NOW, keepaliveUntil: NOW - 1 }), [], NOW)).toMatchObject({ stopNow: false, deadline: NOW + 60_000, why: 'active 0 s ago; idle timeout is 60 s' });
  });

  it('treats activity stamped in the future (a clock step back) as recent, not as idle', () => {
    expect(idleVerdict(rec({ lastActiveAt: NOW + 30_000 }), [], NOW)).toMatchObject({ stopNow: false, deadline: NOW + 90_000 });
  });
});
