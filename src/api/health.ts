import { AppError } from '../errors.ts';
import { Type } from '@sinclair/typebox';
import { errorMessage } from '../log.ts';
import { diskProblem, diskSpace } from '../store/disk.ts';
import { buildOpenApi } from './openapi.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery, Ready } from './schemas.ts';

const tags = ['health'];

async function readiness(ctx: RequestContext) {
  const checks = { sqlite: 'ok', runtime: 'ok', disk: 'ok', egress: ctx.deps.config.hostFirewall ? 'ok' : 'off' };
  const { db } = ctx.deps.store;
  try {
    // A real read of the file (SELECT 1 alone never touches it): a store that cannot even read says so here.
    db.get('SELECT COUNT(*) AS n FROM schema_migrations');
  } catch (err) {
    checks.sqlite = errorMessage(err);
  }
  const minFreeBytes = ctx.deps.config.minFreeMb * 1024 * 1024;
  const disk = diskProblem(ctx.deps.config.dataDir, minFreeBytes, db.lastStorageFailure);
  if (disk.problem) checks.disk = disk.problem;
  try {
    await Promise.race([
      ctx.deps.runtime.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
    ]);
  } catch (err) {
    checks.runtime = errorMessage(err);
  }
  if (ctx.deps.config.hostFirewall) checks.egress = await egressCheck(ctx);
  // Firewall off is the operator's loud choice, not a fault: it does not make the daemon unready.
  const ready = checks.sqlite === 'ok' && checks.runtime === 'ok' && checks.disk === 'ok' && (checks.egress === 'ok' || checks.egress === 'off');
  return { status: ready ? 200 : 503, body: { ready, checks, data_disk: { free_bytes: disk.freeBytes, min_free_bytes: minFreeBytes } } };
}

/** 'ok', or what of the egress firewall is missing right now (read live: the reconcile pass repairs it within one interval). */
/** The reading of the firewall in progress, per runtime: anyone may call /readyz, and each reading forks iptables. */
const egressReadings = new WeakMap<object, Promise<string>>();

/** What the egress rules lack ('ok' when nothing). Callers meanwhile share the reading in flight, so a flood of /readyz runs one iptables at a time. */
function egressCheck(ctx: RequestContext): Promise<string> {
  const runtime = ctx.deps.runtime;
  const inFlight = egressReadings.get(runtime);
  if (inFlight) return inFlight;
  const answer = runtime.firewallProblems()
    // Docker deletes and re-inserts its own jumps whenever a network is made (another instance's, too): a gap
    // seen once is read again a moment later, and only what is still missing is reported.
    .then(async (missing) => (missing.length ? (await new Promise((r) => setTimeout(r, 300)), runtime.firewallProblems()) : missing))
    .then(
      (missing) => (missing.length ? missing.join('; ') : 'ok'),
      (err: unknown) => `cannot read the firewall: ${errorMessage(err)}`,
    ).finally(() => egressReadings.delete(runtime));
  egressReadings.set(runtime, answer);
  return answer;
}

function renderMetrics(ctx: RequestContext): string {
  const byStatus = ctx.deps.store.db.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM sandboxes GROUP BY status');
  const pool = ctx.deps.pool.stats();
  const tasksRunning = ctx.deps.store.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM tasks WHERE status = 'running'`)?.n ?? 0;
  let freeBytes: number | undefined;
  try {
    freeBytes = diskSpace(ctx.deps.config.dataDir).freeBytes;
  } catch {
    // no sample: statfs failing is reported by /readyz
  }
  return ctx.deps.metrics.render([
    { name: 'sandboxd_tasks_running', help: 'Agent tasks running now.', samples: [[{}, Number(tasksRunning)]] },
    { name: 'sandboxd_sandboxes', help: 'Sandboxes by status.', samples: byStatus.map((r) => [{ status: r.status }, Number(r.n)]) },
    { name: 'sandboxd_exec_sessions', help: 'Commands running through the worker pool now.', samples: [[{}, pool.execActive]] },
    { name: 'sandboxd_worker_threads', help: 'Worker threads in the pool.', samples: [[{}, pool.threads]] },
    { name: 'sandboxd_worker_queue', help: 'Tasks waiting for a worker.', samples: [[{}, pool.queued]] },
    { name: 'sandboxd_worker_utilization', help: 'Share of time the pool was busy.', samples: [[{}, pool.utilization]] },
    { name: 'sandboxd_data_disk_free_bytes', help: 'Free bytes on the data disk (SANDBOXED_DATA_DIR), as an unprivileged writer sees them.', samples: freeBytes === undefined ? [] : [[{}, freeBytes]] },
    ...workspaceDiskGauges(ctx),
    { name: 'sandboxd_storage_failures', help: 'SQLite writes and reads the data disk refused on the main thread since start.', samples: [[{}, ctx.deps.store.db.storageFailures]] },
  ]);
}

/** Per-sandbox workspace use and limit (mounted images only; a plain-directory workspace has no limit yet). */
function workspaceDiskGauges(ctx: RequestContext): { name: string; help: string; samples: [Record<string, string>, number][] }[] {
  const used: [Record<string, string>, number][] = [];
  const limit: [Record<string, string>, number][] = [];
  for (const { id } of ctx.deps.store.db.all<{ id: string }>('SELECT id FROM sandboxes')) {
    const u = ctx.deps.workspaces.volumes.usageSync(id);
    if (!u) continue;
    used.push([{ sandbox: id }, u.usedMb * 1024 * 1024]);
    limit.push([{ sandbox: id }, u.limitMb * 1024 * 1024]);
  }
  return [
    { name: 'sandboxd_workspace_disk_used_bytes', help: 'Bytes used in each sandbox workspace image.', samples: used },
    { name: 'sandboxd_workspace_disk_limit_bytes', help: 'Size limit of each sandbox workspace image.', samples: limit },
  ];
}

/** Liveness, readiness and the OpenAPI document: open, no token needed. */
export function healthRoutes(all: () => Route[]): Route[] {
  return [
    {
      method: 'GET', path: '/healthz', operationId: 'healthz', tags, open: true, summary: 'Liveness: answers `ok` while the process serves',
      query: NoQuery, response: { status: 200, schema: Type.Literal('ok'), description: 'Plain text `ok`.' },
      handler: () => ({ status: 200, body: 'ok', headers: { 'content-type': 'text/plain; charset=utf-8' } }),
    },
    {
      method: 'GET', path: '/readyz', operationId: 'readyz', tags, open: true, summary: 'Readiness: SQLite and the container runtime answer, and the data disk has room',
      query: NoQuery, response: { status: 200, schema: Ready, description: 'Ready (503 with the failing check otherwise).' },
      handler: readiness,
    },
    {
      method: 'GET', path: '/metrics', operationId: 'metrics', tags, summary: 'Prometheus metrics (an admin token when auth is on: they name every tenant\'s sandboxes)',
      query: NoQuery, response: { status: 200, description: 'Prometheus text format 0.0.4.' },
      handler: (ctx) => {
        // Per-sandbox series carry every tenant's ids, which are also their preview host names.
        if (!ctx.caller.admin) throw new AppError('admin_only', '/metrics names every tenant\'s sandboxes: call it with an admin token (name:secret:admin in SANDBOXD_API_TOKENS)');
        return { status: 200, body: renderMetrics(ctx), headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } };
      },
    },
    {
      method: 'GET', path: '/openapi.json', operationId: 'openapi', tags, open: true, summary: 'This OpenAPI 3.1 document',
      query: NoQuery, response: { status: 200, description: 'OpenAPI 3.1.' },
      handler: () => ({ status: 200, body: buildOpenApi(all()) }),
    },
  ];
}
