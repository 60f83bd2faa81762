import type { Config } from '../src/config.ts';
import { errorMessage } from '../src/log.ts';
import { reconcileAll, reconcileSandbox, type ReconcileDeps, type ReconcileReport } from '../src/sandboxes/reconcile.ts';
import { workerContext } from './context.ts';

function deps(config: Config): ReconcileDeps {
  const ctx = workerContext(config, 'reconciler');
  return {
    store: ctx.store, runtime: ctx.runtime, workspaces: ctx.workspaces, log: ctx.log,
    stopGraceS: config.stopGraceS, creatingStuckS: config.creatingStuckS, removeOrphans: config.reconcileRemoveOrphans,
  };
}

/** The full pass in flight on this thread: the periodic one and the follower's catch-up after a reconnect share it. */
let passInFlight: Promise<ReconcileReport> | undefined;

/** Runs a full pass, or joins the one already running (two at once would race each other's claims). */
function fullPass(d: ReconcileDeps, boot: boolean): Promise<ReconcileReport> {
  passInFlight ??= reconcileAll(d, boot).finally(() => (passInFlight = undefined));
  return passInFlight;
}

/**
 * One full pass over every row and labelled container (on boot, and on the reconcile interval), and the
 * egress firewall put back if anything flushed or moved it (this thread shares the daemon's root/NET_ADMIN).
 */
export async function reconcile(task: { config: Config; boot: boolean }): Promise<ReconcileReport & { firewallRepaired: string[] }> {
  const d = deps(task.config);
  let firewallRepaired: string[] = [];
  if (task.config.hostFirewall) {
    // First, and whatever the rows do: a pass that fails half-way must not leave the rules missing.
    try {
      firewallRepaired = await d.runtime.repairIsolation();
      if (firewallRepaired.length) d.log.warn('egress firewall rules were missing or out of place; put back', { repaired: firewallRepaired });
    } catch (err) {
      d.log.error('cannot repair the egress firewall; /readyz reports what is missing', { error: errorMessage(err) });
    }
  }
  return { ...(await fullPass(d, task.boot)), firewallRepaired };
}

/**
 * Follows the runtime's event stream for the life of the daemon and reconciles each sandbox it names, so a
 * container that dies behind our back is reflected at once. Reconnects after an engine outage and then
 * does a full pass, since events were missed meanwhile.
 */
export async function watchEvents(task: { config: Config }): Promise<void> {
  const d = deps(task.config);
  const queue: string[] = [];
  let draining = false;
  const drain = async () => {
    if (draining) return;
    draining = true;
    while (queue.length) {
      const id = queue.shift()!;
      if (queue.includes(id)) continue; // a later event for the same sandbox will look at it anyway
      await reconcileSandbox(d, id).catch((err) => d.log.warn('event reconcile failed', { sandbox: id, error: errorMessage(err) }));
    }
    draining = false;
  };
  const never = new AbortController().signal;
  for (let attempt = 0; ; attempt++) {
    try {
      if (attempt > 0) await fullPass(d, false);
      await d.runtime.events(never, (e) => {
        queue.push(e.sandboxId);
        void drain();
      });
    } catch (err) {
      d.log.warn('runtime event stream lost; reconnecting', { error: errorMessage(err) });
    }
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** Math.min(attempt, 3), 5000)));
  }
}
