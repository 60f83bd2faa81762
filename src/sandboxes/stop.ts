import { errorMessage, type Logger } from '../log.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Store } from '../store/index.ts';
import type { SandboxRecord, Status } from '../model/sandbox.ts';

/** What a stop needs; the main thread and each worker thread pass their own connections. */
export interface StopDeps {
  store: Store;
  runtime: Runtime;
  stopGraceS: number;
  log: Logger;
}

/** How one stop ended: stopped (the row records it), not claimed (another writer got there first), or failed. */
export type StopOutcome =
  | { outcome: 'stopped'; record: SandboxRecord }
  | { outcome: 'not_claimed' }
  | { outcome: 'failed'; error: string };

/** How a caller claims the row: the default is a compare-and-set on `from` (and on `version` when given). */
export interface StopClaim {
  from: readonly Status[];
  /** The row version the caller decided on; the claim fails if any transition happened since. */
  version?: number;
  /** Decides again and claims in one step (the idle reaper re-reads leases inside the claim's transaction). */
  claim?: () => SandboxRecord | undefined;
}

/**
 * The one stop of a sandbox, used by the API, both reapers and the reconciler: claim the row (→ `stopping`,
 * committed before the runtime is asked), stop the container, record `stopped` with the reason.
 *
 * One failure policy: when the runtime fails to stop it, the row goes back to the status it was claimed
 * from, with `stop_failed` and the error in `status_detail`. The container is then still what that status
 * says (a stop that fails leaves it running); a later pass or client retries, and if it died after all the
 * reconciler records that from the engine's events.
 */
export async function stopSandbox(deps: StopDeps, id: string, reason: string, how: StopClaim): Promise<StopOutcome> {
  const { store } = deps;
  const before = store.sandboxes.get(id);
  if (!before || !how.from.includes(before.status)) return { outcome: 'not_claimed' };
  const version = how.version ?? before.version;
  const claimed = how.claim ? how.claim() : store.sandboxes.transition(id, [before.status], 'stopping', reason, {}, version);
  if (!claimed) return { outcome: 'not_claimed' };
  return finishStop(deps, id, reason, before.status);
}

/**
 * The second half of a stop, for a row already `stopping` (claimed above, or found so by the reconciler
 * after a crash): stop the container and record `stopped`; on failure the row goes back to `revertTo`
 * (`stopping` leaves it as it is, for the next reconcile pass).
 */
export async function finishStop(deps: StopDeps, id: string, reason: string, revertTo: Status): Promise<StopOutcome> {
  const { store, runtime, log } = deps;
  try {
    await runtime.stop(id, deps.stopGraceS);
  } catch (err) {
    const error = errorMessage(err);
    // A row found `stopping` (a crash's leftover) stays so, reason and all: the reconciler's next pass retries it.
    if (revertTo !== 'stopping') store.sandboxes.transition(id, ['stopping'], revertTo, 'stop_failed', { statusDetail: `stop (${reason}) failed: ${error}` });
    log.warn('stop failed; the sandbox keeps its status', { sandbox: id, reason, status: revertTo, error });
    return { outcome: 'failed', error };
  }
  const record = store.sandboxes.transition(id, ['stopping'], 'stopped', reason, { stoppedAt: Date.now(), lastStopReason: reason, statusDetail: null });
  // Someone else moved it on meanwhile (a purge finishing, a reconcile): the stop still happened.
  return record ? { outcome: 'stopped', record } : { outcome: 'not_claimed' };
}
