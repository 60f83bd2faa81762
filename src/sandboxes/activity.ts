import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { ActivitySource, ActivityStore, Lease, LeaseKind } from '../store/activity.ts';
import { isStorageFailure } from '../store/disk.ts';
import { idleVerdict, type IdleVerdict } from './idle.ts';

/** Writes of the same source for the same sandbox closer together than this are dropped. */
const TOUCH_EVERY_MS = 1000;
/**
 * A sandbox written less than this ago has its next uses coalesced into one transaction per TOUCH_EVERY_MS;
 * one idle longer is written at once, so the idle reaper (at least 10 s of idleness) never misses a first use.
 */
const COALESCE_WITHIN_MS = 5000;
/** How often the throttle maps drop keys past their window. */
const PRUNE_EVERY_MS = 10_000;

/** What a dropped write was, as /metrics labels it. */
type Dropped = 'activity' | 'lease';

/**
 * Activity on the main thread: cheap to call on every proxied request (throttled in memory), persisted so
 * the idle reaper in its worker sees it. Leases hold a sandbox awake until released.
 *
 * These writes are bookkeeping, never the reason a request fails: while the data disk refuses writes they
 * are dropped and counted (`sandboxd_dropped_writes_total`), and the gateway keeps proxying. A lease that
 * could not be closed, and the boot's clearing of stale leases, are retried with the next write.
 */
export class Activity {
  private store: ActivityStore;
  private log: Logger | undefined;
  private metrics: Metrics | undefined;
  private recent = new Map<string, number>();
  /** When each sandbox's activity was last written, for the coalescing rule. */
  private written = new Map<string, number>();
  /** Coalesced uses waiting for the next flush, by sandbox and source. */
  private pending = new Map<string, { sandboxId: string; source: ActivitySource; at: number }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private prunedAt = 0;
  /** Leases whose delete failed: retried before the next write, so no lease outlives its connection. */
  private unclosed = new Set<string>();
  /** Leases opened before this time belong to an earlier daemon; set while their clearing is pending. */
  private staleBefore: number | undefined;
  private failing = false;
  /** Writes dropped so far, by what they were (also in /metrics when a Metrics is given). */
  readonly dropped: Record<Dropped, number> = { activity: 0, lease: 0 };

  constructor(store: ActivityStore, log?: Logger, metrics?: Metrics) {
    this.store = store;
    this.log = log;
    this.metrics = metrics;
  }

  /** Why a sandbox is awake: its open leases, its last use per source, and the idle rule's verdict now. */
  explain(rec: SandboxRecord): { leases: Lease[]; lastBySource: Record<string, number>; verdict: IdleVerdict } {
    const leases = this.store.leases(rec.id);
    return { leases, lastBySource: this.store.lastBySource(rec.id), verdict: idleVerdict(rec, leases, Date.now()) };
  }

  /** Records use of a sandbox now (at most one write per second per source); never throws for a full disk. */
  touch(sandboxId: string, source: ActivitySource): void {
    const now = Date.now();
    const key = `${sandboxId}:${source}`;
    if (now - (this.recent.get(key) ?? 0) < TOUCH_EVERY_MS) return;
    this.recent.set(key, now);
    this.prune(now);
    if (now - (this.written.get(sandboxId) ?? 0) >= COALESCE_WITHIN_MS) {
      this.written.set(sandboxId, now);
      this.write('activity', () => this.store.touch(sandboxId, source, now));
      return;
    }
    this.pending.set(key, { sandboxId, source, at: now });
    this.flushTimer ??= setTimeout(() => this.flush(), TOUCH_EVERY_MS).unref();
  }

  /**
   * The throttle maps only need recent keys: at most every PRUNE_EVERY_MS the ones past their window are
   * forgotten, so neither grows with every sandbox ever seen (destroyed and purged ones included).
   */
  private prune(now: number): void {
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    for (const [k, at] of this.recent) if (now - at >= TOUCH_EVERY_MS) this.recent.delete(k);
    for (const [id, at] of this.written) if (now - at >= COALESCE_WITHIN_MS) this.written.delete(id);
  }

  /** How many keys the throttle maps hold (for tests of their pruning). */
  get throttled(): number {
    return this.recent.size + this.written.size;
  }

  /** Writes the coalesced uses in one transaction (also on shutdown). */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.pending.size) return;
    const uses = [...this.pending.values()];
    this.pending.clear();
    const now = Date.now();
    for (const u of uses) this.written.set(u.sandboxId, now);
    this.write('activity', () => this.store.touchMany(uses));
  }

  /** Opens a lease; `release` is idempotent and records activity as the lease ends. */
  openLease(sandboxId: string, kind: LeaseKind): { release(): void } {
    const id = randomUUID();
    const opened = this.write('lease', () => this.store.openLease(id, sandboxId, kind, Date.now()));
    let open = true;
    return {
      release: () => {
        if (!open) return;
        open = false;
        if (opened && !this.write('lease', () => this.store.closeLease(id))) this.unclosed.add(id);
        this.write('activity', () => this.store.touch(sandboxId, kind === 'preview_ws' ? 'gateway' : kind === 'task' ? 'task' : kind === 'terminal' ? 'terminal' : 'exec', Date.now()));
      },
    };
  }

  /** Drops the leases an earlier daemon left (opened before `bootAt`); on a full disk it is retried later. */
  clearStaleLeases(bootAt: number): void {
    this.staleBefore = bootAt;
    this.retryPending();
  }

  /** Runs one bookkeeping write; a failure is counted, logged (a full disk once per outage), and answered `false`. */
  private write(what: Dropped, fn: () => void): boolean {
    if (this.unclosed.size || this.staleBefore !== undefined) this.retryPending();
    try {
      fn();
    } catch (err) {
      // Bookkeeping never fails the request it serves: a busy or broken database is logged, not thrown.
      if (!isStorageFailure(err)) this.log?.error('an activity write failed', { what, error: (err as Error)?.message, stack: (err as Error)?.stack });
      this.drop(what, err);
      return false;
    }
    if (this.failing) {
      this.failing = false;
      this.log?.info('activity writes recorded again');
    }
    return true;
  }

  private drop(what: Dropped, err: unknown): void {
    this.dropped[what]++;
    this.metrics?.inc('sandboxd_dropped_writes_total', 'Bookkeeping writes (activity, leases) dropped because the database refused them, e.g. on a full data disk, by what they were.', { what });
    if (!this.failing && isStorageFailure(err)) {
      this.failing = true;
      this.log?.warn('the data disk refuses writes: activity and leases are not recorded until it has room (previews keep working)', { error: (err as Error).message });
    }
  }

  private retryPending(): void {
    try {
      if (this.staleBefore !== undefined) {
        this.store.clearLeases(this.staleBefore);
        this.staleBefore = undefined;
      }
      for (const id of this.unclosed) {
        this.store.closeLease(id);
        this.unclosed.delete(id);
      }
    } catch {
      // still failing: the next write tries again
    }
  }
}
