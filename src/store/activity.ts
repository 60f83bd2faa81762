import type { Db } from './db.ts';

/** What counts as use of a sandbox. */
export type ActivitySource = 'gateway' | 'exec' | 'terminal' | 'task' | 'keepalive' | 'api';
/** What holds a sandbox awake for as long as it is open. */
export type LeaseKind = 'terminal' | 'preview_ws' | 'task' | 'exec_stream';

export interface Lease {
  id: string;
  kind: LeaseKind;
  openedAt: number;
}

/** Last activity per source and open leases, per sandbox; the idle reaper reads them from its worker. */
export class ActivityStore {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Records use now: per source, and as the sandbox's last activity. */
  touch(sandboxId: string, source: ActivitySource, at: number): void {
    // A request can outlive its sandbox's purge: record nothing for a sandbox that is gone.
    this.db.run(`INSERT INTO activity (sandbox_id, source, at) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM sandboxes WHERE id = ?)
      ON CONFLICT (sandbox_id, source) DO UPDATE SET at = excluded.at`, sandboxId, source, at, sandboxId);
    this.db.run('UPDATE sandboxes SET last_active_at = MAX(last_active_at, ?) WHERE id = ?', at, sandboxId);
  }

  /** Records many uses in one transaction (the main thread's coalesced touches). */
  touchMany(uses: { sandboxId: string; source: ActivitySource; at: number }[]): void {
    this.db.tx(() => {
      for (const u of uses) this.touch(u.sandboxId, u.source, u.at);
    });
  }

  lastBySource(sandboxId: string): Record<string, number> {
    return Object.fromEntries(this.db.all<{ source: string; at: number }>('SELECT source, at FROM activity WHERE sandbox_id = ?', sandboxId).map((r) => [r.source, Number(r.at)]));
  }

  openLease(id: string, sandboxId: string, kind: LeaseKind, at: number): void {
    this.db.run('INSERT INTO leases (id, sandbox_id, kind, opened_at) VALUES (?, ?, ?, ?)', id, sandboxId, kind, at);
  }

  closeLease(id: string): void {
    this.db.run('DELETE FROM leases WHERE id = ?', id);
  }

  leases(sandboxId: string): Lease[] {
    return this.db.all<{ id: string; kind: LeaseKind; opened_at: number }>('SELECT id, kind, opened_at FROM leases WHERE sandbox_id = ? ORDER BY opened_at', sandboxId)
      .map((r) => ({ id: r.id, kind: r.kind, openedAt: Number(r.opened_at) }));
  }

  /**
   * Leases belong to connections of a running daemon: a new daemon drops those opened before it started
   * (`before`), and none of its own, so the clearing can be retried after a failed write.
   */
  clearLeases(before = Number.MAX_SAFE_INTEGER): number {
    return this.db.run('DELETE FROM leases WHERE opened_at < ?', before);
  }
}
