import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { Metrics } from '../metrics.ts';

/** How long a client refused for a full sandbox or tenant is told to wait. */
const CAP_RETRY_S = 5;

/** What a session is, for the metrics of refusals. */
export type SessionKind = 'exec' | 'exec_sse' | 'exec_ws' | 'terminal' | 'process' | 'archive' | 'process_control' | 'files_delete' | 'task_stream';

/**
 * One combined "sessions" cap per sandbox and per tenant (the sandbox's owner), rather than one per kind:
 * whatever a client holds open (a sync or SSE exec, a WebSocket exec, a terminal, a background process
 * while it runs) costs the same scarce things (an exec slot or a process in the sandbox, a socket), so one
 * number per scope is what an operator can reason about. Counts live in memory: they describe this
 * process's open sessions, and a restart closes them all. Background processes are counted from what
 * the sandbox last reported (see `setBackground`) and only while their sandbox is running.
 */
export class SessionLimits {
  private perSandbox: number;
  private perTenant: number;
  private live = new Map<string, number>();
  private liveByTenant = new Map<string, number>();
  /** Background processes believed running, per sandbox, with the tenant that owns them. */
  private background = new Map<string, { tenant: string; n: number }>();
  private isRunning: (sandboxId: string) => boolean;
  private metrics: Metrics | undefined;

  constructor(config: Config, isRunning: (sandboxId: string) => boolean, metrics?: Metrics) {
    this.perSandbox = config.caps.sessionsPerSandbox;
    this.perTenant = config.caps.sessionsPerTenant;
    this.isRunning = isRunning;
    this.metrics = metrics;
  }

  /** Takes a session slot for `kind` like `acquire`, counting a refusal in /metrics by the cap that refused it. */
  take(rec: Pick<SandboxRecord, 'id' | 'owner'>, kind: SessionKind, opts: { liveOnly?: boolean } = {}): () => void {
    return this.counted(kind, () => this.acquire(rec, opts));
  }

  /** Like `recheck`, counting a refusal in /metrics. */
  recheckFor(rec: Pick<SandboxRecord, 'id' | 'owner'>, kind: SessionKind): void {
    this.counted(kind, () => this.recheck(rec));
  }

  /** Runs a check that may refuse with `rate_limited`; a refusal is counted in /metrics for `kind`, then rethrown. */
  counted<T>(kind: SessionKind, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.countRefusal(err, kind);
      throw err;
    }
  }

  private countRefusal(err: unknown, kind: SessionKind): void {
    if (err instanceof AppError && err.code === 'rate_limited') {
      this.metrics?.inc('sandboxd_sessions_refused_total', 'Sessions refused with 429, by cap and kind.', { cap: String(err.details?.cap ?? 'unknown'), kind });
    }
  }

  /**
   * Takes one session slot in the sandbox and its tenant, or throws `rate_limited` naming the cap; call the
   * answer to give it back (once). `liveOnly`: the check counts open sessions but not background processes,
   * for the short calls that manage those processes (list, logs, kill): a tenant whose cap its background
   * processes fill can still see and end them, while a flood of such calls is bounded like any session.
   */
  private acquire(rec: Pick<SandboxRecord, 'id' | 'owner'>, opts: { liveOnly?: boolean } = {}): () => void {
    const inSandbox = opts.liveOnly ? (this.live.get(rec.id) ?? 0) : this.inSandbox(rec.id);
    if (inSandbox >= this.perSandbox) {
      throw refusal(`this sandbox already holds ${inSandbox} sessions (execs, streams, terminals, background processes); the cap is SANDBOXD_SESSIONS_PER_SANDBOX=${this.perSandbox}: end one, or retry later`, 'SANDBOXD_SESSIONS_PER_SANDBOX', this.perSandbox);
    }
    const inTenant = opts.liveOnly ? (this.liveByTenant.get(rec.owner) ?? 0) : this.inTenant(rec.owner);
    if (inTenant >= this.perTenant) {
      throw refusal(`tenant '${rec.owner}' already holds ${inTenant} sessions over its sandboxes (execs, streams, terminals, background processes); the cap is SANDBOXD_SESSIONS_PER_TENANT=${this.perTenant}: end one, or retry later`, 'SANDBOXD_SESSIONS_PER_TENANT', this.perTenant);
    }
    bump(this.live, rec.id, 1);
    bump(this.liveByTenant, rec.owner, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bump(this.live, rec.id, -1);
      bump(this.liveByTenant, rec.owner, -1);
    };
  }

  /** Throws like `acquire` when a held slot turns out to be over a cap once fresh background counts are in (a detach). */
  private recheck(rec: Pick<SandboxRecord, 'id' | 'owner'>): void {
    const inSandbox = this.inSandbox(rec.id);
    if (inSandbox > this.perSandbox) {
      throw refusal(`this sandbox already runs ${inSandbox - 1} sessions, background processes included; the cap is SANDBOXD_SESSIONS_PER_SANDBOX=${this.perSandbox}: end one (DELETE .../processes/{pid}), or retry later`, 'SANDBOXD_SESSIONS_PER_SANDBOX', this.perSandbox);
    }
    const inTenant = this.inTenant(rec.owner);
    if (inTenant > this.perTenant) {
      throw refusal(`tenant '${rec.owner}' already holds ${inTenant - 1} sessions, background processes included; the cap is SANDBOXD_SESSIONS_PER_TENANT=${this.perTenant}: end one, or retry later`, 'SANDBOXD_SESSIONS_PER_TENANT', this.perTenant);
    }
  }

  /** Records how many background processes the sandbox reports running (after a detach, a listing or a kill). */
  setBackground(rec: Pick<SandboxRecord, 'id' | 'owner'>, n: number): void {
    if (n > 0) this.background.set(rec.id, { tenant: rec.owner, n });
    else this.background.delete(rec.id);
  }

  /** Sessions the sandbox holds now: live ones plus its background processes. */
  inSandbox(sandboxId: string): number {
    return (this.live.get(sandboxId) ?? 0) + this.backgroundOf(sandboxId);
  }

  private inTenant(tenant: string): number {
    let n = this.liveByTenant.get(tenant) ?? 0;
    // Every entry is looked at (backgroundOf drops those whose sandbox stopped or is gone), not only this
    // tenant's: a tenant that never comes back would otherwise leave its stopped sandboxes here for good.
    for (const [id, b] of this.background) {
      const running = this.backgroundOf(id);
      if (b.tenant === tenant) n += running;
    }
    return n;
  }

  private backgroundOf(sandboxId: string): number {
    const b = this.background.get(sandboxId);
    if (!b) return 0;
    // A stop ends every process in the container: a stopped sandbox's count is stale, drop it.
    if (!this.isRunning(sandboxId)) {
      this.background.delete(sandboxId);
      return 0;
    }
    return b.n;
  }
}

function refusal(message: string, cap: string, limit: number): AppError {
  return new AppError('rate_limited', message, { cap, limit }, CAP_RETRY_S);
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
