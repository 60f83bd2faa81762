import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { migrations } from './migrations.ts';

export type Row = Record<string, unknown>;
export type Param = SQLInputValue;

/** A thin wrapper over node:sqlite that behaves the same on Node and Deno. */
export class Db {
  readonly raw: DatabaseSync;

  constructor(path: string, busyTimeoutMs: number) {
    this.raw = new DatabaseSync(path);
    this.raw.exec(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    this.raw.exec('PRAGMA journal_mode = WAL');
    this.raw.exec('PRAGMA synchronous = NORMAL');
    this.raw.exec('PRAGMA foreign_keys = ON');
  }

  /** Prepared statements by their text: the same few queries run on every request (the gateway's lookup). */
  private statements = new Map<string, StatementSync>();

  private prepare(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.raw.prepare(sql)));
    return st;
  }

  /** Runs a statement that returns no rows; answers how many rows it changed. */
  run(sql: string, ...params: Param[]): number {
    return Number(this.prepare(sql).run(...params).changes);
  }

  get<T = Row>(sql: string, ...params: Param[]): T | undefined {
    return this.prepare(sql).get(...params) as T | undefined;
  }

  all<T = Row>(sql: string, ...params: Param[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  private depth = 0;

  /**
   * Runs fn inside an IMMEDIATE transaction so concurrent writers queue on busy_timeout instead of failing
   * mid-way. Called inside another, it joins the outer transaction.
   */
  tx<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.depth++;
    try {
      return this.outerTx(fn);
    } finally {
      this.depth--;
    }
  }

  private outerTx<T>(fn: () => T): T {
    this.raw.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.raw.exec('COMMIT');
      return out;
    } catch (err) {
      this.raw.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    this.raw.close();
  }
}

/** Opens the database file and applies every pending migration, each in its own transaction. */
export function openDb(path: string, busyTimeoutMs: number): Db {
  const db = new Db(path, busyTimeoutMs);
  db.raw.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  for (const [index, sql] of migrations.entries()) {
    const version = index + 1;
    db.tx(() => {
      if (db.get('SELECT 1 FROM schema_migrations WHERE version = ?', version)) return;
      db.raw.exec(sql);
      db.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', version, Date.now());
    });
  }
  return db;
}
