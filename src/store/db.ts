import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isStorageFailure, StorageError } from './disk.ts';
import { migrations } from './migrations.ts';

export type Row = Record<string, unknown>;
export type Param = SQLInputValue;

/**
 * A thin wrapper over node:sqlite that behaves the same on Node and Deno. A failure of the disk under it
 * (SQLITE_FULL, SQLITE_IOERR*) comes out as a StorageError: `503 capacity` naming the data directory, which
 * every caller can tell from a bug with `isStorageFailure`.
 */
export class Db {
  readonly raw: DatabaseSync;
  /** The database file, and the directory holding it (storage errors name it). */
  readonly path: string;
  readonly dir: string;
  /** Storage failures seen on this connection, and the latest one (for /readyz and the logs). */
  storageFailures = 0;
  lastStorageFailure: { at: number; message: string } | undefined;

  constructor(path: string, busyTimeoutMs: number) {
    this.path = path;
    this.dir = dirname(path);
    this.raw = new DatabaseSync(path);
    try {
      this.exec(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
      this.exec('PRAGMA journal_mode = WAL');
      this.exec('PRAGMA synchronous = NORMAL');
      this.exec('PRAGMA foreign_keys = ON');
    } catch (err) {
      this.raw.close();
      throw err;
    }
  }

  /** Prepared statements by their text: the same few queries run on every request (the gateway's lookup). */
  private statements = new Map<string, StatementSync>();

  private prepare(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.raw.prepare(sql)));
    return st;
  }

  /** Turns a disk failure into a StorageError (counted); anything else passes through unchanged. */
  private storage(err: unknown): unknown {
    if (err instanceof StorageError || !isStorageFailure(err)) return err;
    this.storageFailures++;
    const wrapped = new StorageError(this.dir, err);
    this.lastStorageFailure = { at: Date.now(), message: wrapped.message };
    return wrapped;
  }

  /** Runs SQL text without parameters (pragmas, DDL, transaction control). */
  exec(sql: string): void {
    try {
      this.raw.exec(sql);
    } catch (err) {
      throw this.storage(err);
    }
  }

  /** Runs a statement that returns no rows; answers how many rows it changed. */
  run(sql: string, ...params: Param[]): number {
    try {
      return Number(this.prepare(sql).run(...params).changes);
    } catch (err) {
      throw this.storage(err);
    }
  }

  /** The first row a query answers, if any. */
  get<T = Row>(sql: string, ...params: Param[]): T | undefined {
    try {
      return this.prepare(sql).get(...params) as T | undefined;
    } catch (err) {
      throw this.storage(err);
    }
  }

  /** Every row a query answers. */
  all<T = Row>(sql: string, ...params: Param[]): T[] {
    try {
      return this.prepare(sql).all(...params) as T[];
    } catch (err) {
      throw this.storage(err);
    }
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
    this.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.exec('COMMIT');
      return out;
    } catch (err) {
      // SQLITE_FULL and I/O errors can roll the whole transaction back already: a second ROLLBACK would
      // throw "no transaction is active" and hide the error that matters.
      if (this.raw.isTransaction) {
        try {
          this.raw.exec('ROLLBACK');
        } catch {
          // the connection is unusable for this transaction either way; the first error says why
        }
      }
      throw err;
    }
  }

  /**
   * Stops this connection from checkpointing the WAL after its own commits (SQLite otherwise does it on the
   * commit that takes the WAL past 1000 pages, in the thread that made it). Another connection then has to
   * run `checkpointPast()` now and then, or the WAL grows.
   */
  leaveCheckpointsToOthers(): void {
    this.exec('PRAGMA wal_autocheckpoint = 0');
  }

  private pageSize: number | undefined;

  /**
   * Once the WAL file holds at least `pages` pages, copies what it can of it into the database without
   * waiting for readers or writers (PASSIVE); answers the WAL's size and how much of it is now in the
   * database, in pages, or undefined when it is smaller (nothing done). With `pages` at SQLite's own
   * threshold (1000) a fresh database checkpoints no sooner than it would have on its own.
   */
  checkpointPast(pages: number): { walPages: number; checkpointedPages: number } | undefined {
    let bytes = 0;
    try {
      bytes = statSync(`${this.path}-wal`).size;
    } catch {
      return undefined; // no WAL yet
    }
    // The page size is fixed once the database exists: read once, not on every pass.
    this.pageSize ??= Number(this.get<{ page_size: number }>('PRAGMA page_size')?.page_size ?? 4096);
    if (bytes < pages * this.pageSize) return undefined;
    const r = this.get<{ log: number; checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)');
    return { walPages: Number(r?.log ?? 0), checkpointedPages: Number(r?.checkpointed ?? 0) };
  }

  /** Closes the connection (the last one to close checkpoints and removes the WAL files). */
  close(): void {
    this.raw.close();
  }
}

/**
 * Opens the database file and applies every pending migration, each in its own transaction. Applied
 * migrations cost one read and no write, so a boot on a full disk still opens the store.
 */
export function openDb(path: string, busyTimeoutMs: number): Db {
  const db = new Db(path, busyTimeoutMs);
  try {
    const hasTable = db.get(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`);
    if (!hasTable) db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const applied = new Set(db.all<{ version: number }>('SELECT version FROM schema_migrations').map((r) => Number(r.version)));
    for (const [index, sql] of migrations.entries()) {
      const version = index + 1;
      if (applied.has(version)) continue;
      // A migration may rebuild a parent table (SQLite's way to drop a constraint): with foreign keys on,
      // dropping the old table would cascade into every child row. The pragma only takes effect outside a
      // transaction; the check inside it refuses to commit a rebuild that left a dangling reference.
      db.exec('PRAGMA foreign_keys = OFF');
      try {
        db.tx(() => {
          // Another thread may have applied it since the read above: look again under the write lock.
          if (db.get('SELECT 1 FROM schema_migrations WHERE version = ?', version)) return;
          db.exec(sql);
          const dangling = db.all('PRAGMA foreign_key_check');
          if (dangling.length) throw new Error(`migration ${version} would leave ${dangling.length} rows pointing at nothing (first: ${JSON.stringify(dangling[0])})`);
          db.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', version, Date.now());
        });
      } finally {
        db.exec('PRAGMA foreign_keys = ON');
      }
    }
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
