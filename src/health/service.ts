import type { Config } from '../config.ts';
import { withDeadline } from '../deadline.ts';
import { errorMessage } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { WorkerPool } from '../pool.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { diskProblem, diskSpace } from '../store/disk.ts';
import type { Store } from '../store/index.ts';
import type { Workspaces } from '../workspaces/workspaces.ts';

/** What /readyz reports: each check 'ok' (egress also 'off') or what is wrong. */
export interface Readiness {
  ready: boolean;
  checks: { sqlite: string; runtime: string; disk: string; egress: string };
  data_disk: { free_bytes: number | null; min_free_bytes: number };
}

/** Readiness and metrics: what the store, the runtime, the pool and the data disk say of themselves. */
export class Health {
  private config: Config;
  private store: Store;
  private runtime: Runtime;
  private pool: WorkerPool;
  private workspaces: Workspaces;
  private metrics: Metrics;
  /** The firewall reading in flight: anyone may call /readyz, and each reading forks iptables. */
  private egressReading: Promise<string> | undefined;

  constructor(deps: { config: Config; store: Store; runtime: Runtime; pool: WorkerPool; workspaces: Workspaces; metrics: Metrics }) {
    this.config = deps.config;
    this.store = deps.store;
    this.runtime = deps.runtime;
    this.pool = deps.pool;
    this.workspaces = deps.workspaces;
    this.metrics = deps.metrics;
  }

  /** SQLite reads, the runtime answers within 2 s, the data disk has room, the egress firewall is whole. */
  async readiness(): Promise<Readiness> {
    const checks = { sqlite: 'ok', runtime: 'ok', disk: 'ok', egress: this.config.hostFirewall ? 'ok' : 'off' };
    try {
      this.store.probe();
    } catch (err) {
      checks.sqlite = errorMessage(err);
    }
    const minFreeBytes = this.config.minFreeMb * 1024 * 1024;
    const disk = diskProblem(this.config.dataDir, minFreeBytes, this.store.db.lastStorageFailure);
    if (disk.problem) checks.disk = disk.problem;
    try {
      await withDeadline(this.runtime.ping(), 2000, () => new Error('no answer within 2 s'));
    } catch (err) {
      checks.runtime = errorMessage(err);
    }
    if (this.config.hostFirewall) checks.egress = await this.egressCheck();
    // Firewall off is the operator's loud choice, not a fault: it does not make the daemon unready.
    const ready = checks.sqlite === 'ok' && checks.runtime === 'ok' && checks.disk === 'ok' && (checks.egress === 'ok' || checks.egress === 'off');
    return { ready, checks, data_disk: { free_bytes: disk.freeBytes, min_free_bytes: minFreeBytes } };
  }

  /** What the egress rules lack ('ok' when nothing). Callers meanwhile share the reading in flight, so a flood of /readyz runs one iptables at a time. */
  private egressCheck(): Promise<string> {
    if (this.egressReading) return this.egressReading;
    const runtime = this.runtime;
    this.egressReading = runtime.isolationProblems()
      // Docker deletes and re-inserts its own jumps whenever a network is made (another instance's, too): a gap
      // seen once is read again a moment later, and only what is still missing is reported.
      .then(async (missing) => (missing.length ? (await new Promise((r) => setTimeout(r, 300)), runtime.isolationProblems()) : missing))
      .then(
        (missing) => (missing.length ? missing.join('; ') : 'ok'),
        (err: unknown) => `cannot read the firewall: ${errorMessage(err)}`,
      ).finally(() => (this.egressReading = undefined));
    return this.egressReading;
  }

  /** The Prometheus text of every counter plus the gauges read now. */
  renderMetrics(): string {
    const pool = this.pool.stats();
    let freeBytes: number | undefined;
    try {
      freeBytes = diskSpace(this.config.dataDir).freeBytes;
    } catch {
      // no sample: statfs failing is reported by /readyz
    }
    return this.metrics.render([
      { name: 'sandboxd_tasks_running', help: 'Agent tasks running now.', samples: [[{}, this.store.tasks.countRunning()]] },
      { name: 'sandboxd_sandboxes', help: 'Sandboxes by status.', samples: this.store.sandboxes.countByStatus().map((r) => [{ status: r.status }, r.n]) },
      { name: 'sandboxd_exec_sessions', help: 'Commands running through the worker pool now.', samples: [[{}, pool.execActive]] },
      { name: 'sandboxd_worker_threads', help: 'Worker threads in the pool.', samples: [[{}, pool.threads]] },
      { name: 'sandboxd_worker_queue', help: 'Tasks waiting for a worker.', samples: [[{}, pool.queued]] },
      { name: 'sandboxd_worker_utilization', help: 'Share of time the pool was busy.', samples: [[{}, pool.utilization]] },
      { name: 'sandboxd_data_disk_free_bytes', help: 'Free bytes on the data disk (SANDBOXED_DATA_DIR), as an unprivileged writer sees them.', samples: freeBytes === undefined ? [] : [[{}, freeBytes]] },
      ...this.workspaceDiskGauges(),
      { name: 'sandboxd_storage_failures', help: 'SQLite writes and reads the data disk refused on the main thread since start.', samples: [[{}, this.store.db.storageFailures]] },
    ]);
  }

  /** Per-sandbox workspace use and limit (mounted images only; a plain-directory workspace has no limit yet). */
  private workspaceDiskGauges(): { name: string; help: string; samples: [Record<string, string>, number][] }[] {
    const used: [Record<string, string>, number][] = [];
    const limit: [Record<string, string>, number][] = [];
    for (const id of this.store.sandboxes.ids()) {
      const u = this.workspaces.volumes.usageSync(id);
      if (!u) continue;
      used.push([{ sandbox: id }, u.usedMb * 1024 * 1024]);
      limit.push([{ sandbox: id }, u.limitMb * 1024 * 1024]);
    }
    return [
      { name: 'sandboxd_workspace_disk_used_bytes', help: 'Bytes used in each sandbox workspace image.', samples: used },
      { name: 'sandboxd_workspace_disk_limit_bytes', help: 'Size limit of each sandbox workspace image.', samples: limit },
    ];
  }
}
