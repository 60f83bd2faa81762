import type { ProcessRecord } from '../model/process.ts';
import type { Db } from './db.ts';

/** The processes table: background processes per sandbox, newest first. */
export class ProcessStore {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  insert(p: ProcessRecord): void {
    this.db.run('INSERT INTO processes (sandbox_id, pid, key, cmd, cwd, started_at) VALUES (?, ?, ?, ?, ?, ?)',
      p.sandboxId, p.pid, p.key, JSON.stringify(p.cmd), p.cwd, p.startedAt);
  }

  list(sandboxId: string, limit = 100): ProcessRecord[] {
    return this.db.all<Record<string, unknown>>('SELECT * FROM processes WHERE sandbox_id = ? ORDER BY started_at DESC LIMIT ?', sandboxId, limit).map(fromRow);
  }

  /** The newest process with this pid (a pid can come back after the container restarts). */
  get(sandboxId: string, pid: number): ProcessRecord | undefined {
    const row = this.db.get<Record<string, unknown>>('SELECT * FROM processes WHERE sandbox_id = ? AND pid = ? ORDER BY started_at DESC LIMIT 1', sandboxId, pid);
    return row && fromRow(row);
  }
}

function fromRow(r: Record<string, unknown>): ProcessRecord {
  return {
    sandboxId: String(r.sandbox_id), pid: Number(r.pid), key: String(r.key), cmd: JSON.parse(String(r.cmd)) as string[],
    cwd: String(r.cwd), startedAt: Number(r.started_at),
  };
}
