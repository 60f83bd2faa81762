import type { Lease } from '../store/activity.ts';
import type { SandboxRecord } from '../model/sandbox.ts';

/** Whether a sandbox should be stopped for idleness now, when it would be, and why — in words for /activity. */
export interface IdleVerdict {
  stopNow: boolean;
  /** When idle stop becomes due (ms since epoch), or null when it never will in this state. */
  deadline: number | null;
  why: string;
}

/** The idle rule: running, `sleep` policy, no open lease, past both its idle timeout and any keepalive. */
export function idleVerdict(rec: SandboxRecord, leases: Lease[], now: number): IdleVerdict {
  if (rec.status !== 'running') return { stopNow: false, deadline: null, why: `not running (${rec.status})` };
  if (rec.idlePolicy === 'always_on') return { stopNow: false, deadline: null, why: 'idle_policy is always_on' };
  const idleDue = rec.lastActiveAt + rec.idleTimeoutS * 1000;
  const deadline = Math.max(idleDue, rec.keepaliveUntil ?? 0);
  if (leases.length) {
    const kinds = [...new Set(leases.map((l) => l.kind))].join(', ');
    return { stopNow: false, deadline, why: `held awake by ${leases.length} open lease(s): ${kinds}` };
  }
  if (now < deadline) {
    return {
      stopNow: false, deadline,
      why: deadline > idleDue ? `keepalive until ${new Date(deadline).toISOString()}` : `active ${Math.round((now - rec.lastActiveAt) / 1000)} s ago; idle timeout is ${rec.idleTimeoutS} s`,
    };
  }
  return { stopNow: true, deadline, why: `idle for ${Math.round((now - rec.lastActiveAt) / 1000)} s, past its ${rec.idleTimeoutS} s timeout` };
}
