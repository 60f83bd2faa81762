import { readFile } from 'node:fs/promises';
import type { Config } from '../src/config.ts';
import { errorMessage } from '../src/log.ts';
import { idleVerdict } from '../src/sandboxes/idle.ts';
import { admissionAfter, bandOf, pickVictims, readMeminfo, STOPS_PER_PASS, type Band } from '../src/sandboxes/pressure.ts';
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
    const verdict = store.db.tx(() => {
      const fresh = store.sandboxes.get(rec.id);
      if (!fresh || fresh.version !== rec.version) return undefined;
      const v = idleVerdict(fresh, store.activity.leases(rec.id), Date.now());
      return v.stopNow && store.sandboxes.transition(rec.id, ['running'], 'stopping', 'idle', {}, rec.version) ? v : undefined;
    });
    if (!verdict) continue;
    try {
      await runtime.stop(rec.id, task.config.stopGraceS);
      store.sandboxes.transition(rec.id, ['stopping'], 'stopped', 'idle', { stoppedAt: Date.now(), lastStopReason: 'idle' });
      log.info('stopped an idle sandbox', { sandbox: rec.id, why: verdict.why });
      stopped.push(rec.id);
    } catch (err) {
      // Leave it running; the next pass tries again, and the reconciler corrects the row if the container died.
      store.sandboxes.transition(rec.id, ['stopping'], 'running', 'idle_stop_failed', { statusDetail: errorMessage(err) });
      log.warn('idle stop failed', { sandbox: rec.id, error: errorMessage(err) });
    }
  }
  return stopped;
}

/**
 * One memory-pressure pass: reads host memory, stops sandboxes as the band demands (from the tenant holding
 * the most memory first; within it least recently active first, skipping running tasks and always_on ones
 * until the emergency band, which stops the largest by real use), and answers whether wakes and creates
 * may go on.
 */
export async function relievePressure(task: { config: Config; admissionOpen: boolean }): Promise<{ availablePct: number; totalBytes: number; availableBytes: number; band: Band; admissionOpen: boolean; stopped: string[] }> {
  const { config } = task;
  const { store, runtime, log } = workerContext(config, 'pressure');
  const { totalBytes, availableBytes } = readMeminfo(await readFile(config.pressure.meminfoPath, 'utf8'));
  const availablePct = (availableBytes / totalBytes) * 100;
  const band = bandOf(availablePct, config.pressure);
  const stopped: string[] = [];
  if (band !== 'normal') {
    const running = store.sandboxes.list({ status: 'running', limit: 100_000 });
    // Fair between tenants (pickVictims): the tenant holding the most memory gives up a sandbox first.
    let victims;
    if (band === 'emergency') {
      const usage = await runtime.memoryUsage();
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
      if (!store.sandboxes.transition(rec.id, ['running'], 'stopping', 'memory_pressure', {}, rec.version)) continue;
      try {
        await runtime.stop(rec.id, config.stopGraceS);
        store.sandboxes.transition(rec.id, ['stopping'], 'stopped', 'memory_pressure', { stoppedAt: Date.now(), lastStopReason: 'memory_pressure' });
        stopped.push(rec.id);
        log.warn('stopped a sandbox for memory pressure', { sandbox: rec.id, band, available_pct: Number(availablePct.toFixed(1)) });
      } catch (err) {
        store.sandboxes.transition(rec.id, ['stopping'], 'running', 'pressure_stop_failed', { statusDetail: errorMessage(err) });
      }
    }
  }
  return { availablePct, totalBytes, availableBytes, band, admissionOpen: admissionAfter(task.admissionOpen, availablePct, config.pressure), stopped };
}
