import type { Db } from './db.ts';

/** One line of the audit log: who did what to which sandbox, and how it ended. */
export interface AuditEntry {
  actor: string;
  action: string;
  sandboxId?: string | null;
  requestId?: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  detail?: Record<string, unknown>;
}

/** Append-only audit log. Callers pass no secrets in `detail`: env values never reach it. */
export class AuditLog {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  record(e: AuditEntry): void {
    this.db.run(
      'INSERT INTO audit_log (at, actor, action, sandbox_id, request_id, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
      Date.now(), e.actor, e.action, e.sandboxId ?? null, e.requestId ?? null, e.outcome, e.detail ? JSON.stringify(e.detail) : null,
    );
  }
}
