import { errorMessage, type Logger } from '../log.ts';
import type { ContainerState, Runtime } from '../runtime/runtime.ts';
import type { Store } from '../store/index.ts';
import { TRANSIENT, type SandboxRecord } from '../model/sandbox.ts';
import type { Workspaces } from '../workspaces/workspaces.ts';
import { finishStop, stopSandbox } from './stop.ts';

/** What the reconciler needs; a worker thread builds its own. */
export interface ReconcileDeps {
  store: Store;
  runtime: Runtime;
  workspaces: Workspaces;
  log: Logger;
  stopGraceS: number;
  creatingStuckS: number;
  removeOrphans: boolean;
}

/** What one pass changed, for logs and tests. */
export interface ReconcileReport {
  checked: number;
  repaired: { id: string; from: string; to: string; reason: string }[];
  orphans: string[];
}

/** A transient row younger than this is still being worked on by the API and is left alone. */
const TRANSIENT_STUCK_S = 120;

/**
 * Converges Docker and the rows: SQLite is the truth for what should exist and run; Docker is the truth
 * for what died. `boot` means no other writer is alive, so every transient row is a crash's leftover.
 */
export async function reconcileAll(deps: ReconcileDeps, boot: boolean): Promise<ReconcileReport> {
  const containers = new Map((await deps.runtime.list()).map((c) => [c.sandboxId, c]));
  const rows = deps.store.sandboxes.all();
  const report: ReconcileReport = { checked: rows.length, repaired: [], orphans: [] };
  for (const row of rows) {
    await reconcileRow(deps, row, containers.get(row.id), boot, report);
    containers.delete(row.id);
  }
  for (const orphan of containers.values()) {
    // A row may have been inserted after our snapshot of the table: look again before calling it an orphan.
    if (deps.store.sandboxes.get(orphan.sandboxId)) continue;
    report.orphans.push(orphan.sandboxId);
    deps.log.warn('container without a sandbox row', { sandbox: orphan.sandboxId, container: orphan.containerId, removing: deps.removeOrphans });
    deps.store.audit.record({ actor: 'reconciler', action: 'reconcile.orphan', sandboxId: orphan.sandboxId, outcome: 'ok', detail: { removed: deps.removeOrphans } });
    if (deps.removeOrphans) await deps.runtime.remove(orphan.sandboxId);
  }
  return report;
}

/** Reconciles one sandbox right after the runtime reported a change to it. */
export async function reconcileSandbox(deps: ReconcileDeps, sandboxId: string): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, repaired: [], orphans: [] };
  const row = deps.store.sandboxes.get(sandboxId);
  if (!row) return report;
  report.checked = 1;
  await reconcileRow(deps, row, await deps.runtime.inspect(sandboxId), false, report);
  return report;
}

async function reconcileRow(deps: ReconcileDeps, row: SandboxRecord, c: ContainerState | undefined, boot: boolean, report: ReconcileReport): Promise<void> {
  const { store, runtime } = deps;
  const move = (to: Parameters<typeof store.sandboxes.transition>[2], reason: string, fields: Parameters<typeof store.sandboxes.transition>[4] = {}, from = [row.status]) => {
    const done = store.sandboxes.transition(row.id, from, to, reason, fields, from.length === 1 && from[0] === row.status ? row.version : undefined);
    if (done) repaired(row, to, reason);
    return done;
  };
  const repaired = (r: SandboxRecord, to: string, reason: string) => {
    report.repaired.push({ id: r.id, from: r.status, to, reason });
    deps.log.info('reconciled', { sandbox: r.id, from: r.status, to, reason });
  };
  const died = (state: ContainerState | undefined) => (!state ? 'removed' : state.oomKilled ? 'oom_killed' : 'exited');

  try {
    if (TRANSIENT.includes(row.status)) {
      const ageS = (Date.now() - row.updatedAt) / 1000;
      if (!boot && ageS < (row.status === 'creating' ? deps.creatingStuckS : TRANSIENT_STUCK_S)) return;
      switch (row.status) {
        case 'creating':
          if (c) {
            await runtime.start(row.id);
            move('running', 'reconciled', { containerId: c.containerId, lastActiveAt: Date.now() });
          } else {
            move('error', 'create_interrupted', { statusDetail: 'the daemon stopped while creating this sandbox; start it to create its container, or purge it' });
          }
          return;
        case 'starting':
          if (c?.running) move('running', 'reconciled', { containerId: c.containerId });
          else move('stopped', 'start_interrupted', { stoppedAt: Date.now(), lastStopReason: 'start_interrupted' });
          return;
        case 'stopping':
          // Finished as any stop is (stop.ts); a failure leaves it stopping, with its reason, for the next pass.
          if (!c?.running) move('stopped', row.reason, { stoppedAt: Date.now(), lastStopReason: row.reason });
          else if ((await finishStop(deps, row.id, row.reason, 'stopping')).outcome === 'stopped') repaired(row, 'stopped', row.reason);
          return;
        case 'destroying':
          await runtime.remove(row.id);
          move('destroyed', row.reason, { containerId: null, lastStopReason: row.reason });
          return;
        case 'purging':
          await runtime.remove(row.id);
          await deps.workspaces.purge(row.id);
          store.sandboxes.delete(row.id);
          report.repaired.push({ id: row.id, from: 'purging', to: 'purged', reason: row.reason });
          return;
      }
    }
    if (row.status === 'running' && !c?.running) {
      const reason = died(c);
      move('stopped', reason, { stoppedAt: Date.now(), lastStopReason: reason, ...(c ? {} : { containerId: null }) });
    } else if (row.status === 'stopped' && !c && row.containerId) {
      // Removed behind our back after it stopped: nothing to converge, but the id it points at is gone.
      store.sandboxes.transition(row.id, ['stopped'], 'stopped', row.reason, { containerId: null }, row.version);
    } else if (row.status === 'stopped' && c?.running) {
      // The row says stopped: claim it, then converge Docker to it (a failed stop leaves it stopped: the next pass retries).
      if ((await stopSandbox(deps, row.id, row.reason, { from: ['stopped'], version: row.version })).outcome === 'stopped') repaired(row, 'stopped', row.reason);
    } else if (row.status === 'destroyed' && c) {
      if (move('destroying', row.reason)) {
        await runtime.remove(row.id);
        store.sandboxes.transition(row.id, ['destroying'], 'destroyed', row.reason, { containerId: null });
      }
    }
  } catch (err) {
    deps.log.warn('reconcile of one sandbox failed; the next pass retries', { sandbox: row.id, error: errorMessage(err) });
  }
}
