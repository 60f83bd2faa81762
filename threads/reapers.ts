import type { Config } from '../src/config.ts';
import { idleVerdict } from '../src/sandboxes/idle.ts';
import { stopSandbox } from '../src/sandboxes/stop.ts';
import { admissionAfter, bandOf, pickVictims, STOPS_PER_PASS, type Band } from '../src/sandboxes/pressure.ts';
import { workerContext } from './context.ts';

/**
 * One pass of the idle reaper: stops every sandbox the idle rule says is due, with reason `idle`. The row
 * is claimed (running → stopping, compare-and-set on its version) before Docker is asked to stop it.
 */
export async function reapIdle(task: { config: Config }): Promise<string[]> {
  const { store, runtime, log } = workerContext(task.config, 'idle-reaper');
  const stopped: string[] = [];
  for (const rec of store.sandboxes.list({ status: 'running', limit: 100_000 })) {
    if (!idleVerdict(rec, store.activity.leases(rec.id), Date.now()).stopNow) continue;
    // Decide again inside the claim's transaction: a lease opened or a use recorded since the first look
    // (a task submitted, a terminal opened) does not bump the row's version, but it is seen here.
    let why = '';
    const done = await stopSandbox({ store, runtime, log, stopGraceS: task.config.stopGraceS }, rec.id, 'idle', {
      from: ['running'], version: rec.version,
      claim: () => store.db.tx(() => {
        const fresh = store.sandboxes.get(rec.id);
        if (!fresh || fresh.version !== rec.version) return undefined;
        const v = idleVerdict(fresh, store.activity.leases(rec.id), Date.now());
        why = v.why;
        return v.stopNow ? store.sandboxes.transition(rec.id, ['running'], 'stopping', 'idle', {}, rec.version) : undefined;
      }),
    });
    if (done.outcome !== 'stopped') continue;
    log.info('stopped an idle sandbox', { sandbox: rec.id, why });
    stopped.push(rec.id);
  }
  return stopped;
}

/**
 * One memory-pressure pass: reads the runtime's capacity, stops sandboxes as the band demands (from the tenant holding
 * the most memory first; within it least recently active first, skipping running tasks and always_on ones
 * until the emergency band, which stops the largest by real use), and answers whether wakes and creates
 * may go on.
 */
export async function relievePressure(task: { config: Config; admissionOpen: boolean }): Promise<{ availablePct: number; totalBytes: number; availableBytes: number; band: Band; admissionOpen: boolean; stopped: string[] }> {
  const { config } = task;
  const { store, runtime, log } = workerContext(config, 'pressure');
  const { totalBytes, availableBytes } = (await runtime.capacity()).memory;
  const availablePct = (availableBytes / totalBytes) * 100;
  const band = bandOf(availablePct, config.pressure);
  const stopped: string[] = [];
  if (band !== 'normal') {
    const running = store.sandboxes.list({ status: 'running', limit: 100_000 });
    // Fair between tenants (pickVictims): the tenant holding the most memory gives up a sandbox first.
    let victims;
    if (band === 'emergency') {
      const usage = (await runtime.capacity({ perSandbox: true })).perSandbox ?? new Map<string, number>();
      const used = (r: { id: string }) => usage.get(r.id) ?? 0;
      victims = pickVictims(running, used, () => true, (a, b) => used(b) - used(a));
    } else {
      victims = pickVictims(
        running, (r) => r.memoryMb,
        (r) => r.idlePolicy !== 'always_on' && !store.activity.leases(r.id).some((l) => l.kind === 'task'),
        (a, b) => a.lastActiveAt - b.lastActiveAt,
      );
    }
    for (const rec of victims.slice(0, STOPS_PER_PASS[band])) {
      const done = await stopSandbox({ store, runtime, log, stopGraceS: config.stopGraceS }, rec.id, 'memory_pressure', { from: ['running'], version: rec.version });
      if (done.outcome !== 'stopped') continue;
      stopped.push(rec.id);
      log.warn('stopped a sandbox for memory pressure', { sandbox: rec.id, band, available_pct: Number(availablePct.toFixed(1)) });
    }
  }
  return { availablePct, totalBytes, availableBytes, band, admissionOpen: admissionAfter(task.admissionOpen, availablePct, config.pressure), stopped };
}
