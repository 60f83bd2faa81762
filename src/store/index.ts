import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ActivityStore } from './activity.ts';
import { AuditLog } from './audit.ts';
import { openDb, type Db } from './db.ts';
import { ensureReserve, isStorageFailure, releaseReserve } from './disk.ts';
import { DIR_MODE, precreatePrivate } from './file-modes.ts';
import type { Logger } from '../log.ts';
import { ProcessStore } from './processes.ts';
import { SandboxStore } from './sandboxes.ts';
import { SecretStore } from './secrets.ts';
import { TaskStore } from './tasks.ts';

/** Every table family behind one open connection; each thread opens its own. */
export interface Store {
  db: Db;
  /** A real read of the file (SELECT 1 alone never touches it): throws when the store cannot even read. */
  probe(): void;
  sandboxes: SandboxStore;
  audit: AuditLog;
  processes: ProcessStore;
  activity: ActivityStore;
  tasks: TaskStore;
  secrets: SecretStore;
}

/**
 * Opens (creating if needed) `<dataDir>/sandboxed.db` with migrations applied. When the disk is too full
 * for SQLite to open it (no room for its WAL index), the ballast file is given up and the open tried once
 * more, so the daemon still boots and serves reads; the ballast is written again while there is room.
 */
export function openStore(dataDir: string, busyTimeoutMs: number, minFreeBytes = 0, log?: Logger): Store {
  mkdirSync(dataDir, { recursive: true, mode: DIR_MODE });
  const path = join(dataDir, 'sandboxed.db');
  let db: Db;
  try {
    // 0600 before SQLite sees it (whatever the umask), so its -wal and -shm, made with the same mode, are too.
    precreatePrivate(path);
    db = openDb(path, busyTimeoutMs);
  } catch (err) {
    if (!isStorageFailure(err) || !releaseReserve(dataDir)) throw err;
    log?.warn(`the data disk is too full to open the database: gave up the reserve file to make room; free space in ${dataDir}`, { error: (err as Error).message });
    db = openDb(path, busyTimeoutMs);
  }
  ensureReserve(dataDir, minFreeBytes);
  return { db, probe: () => void db.get('SELECT COUNT(*) AS n FROM schema_migrations'), sandboxes: new SandboxStore(db), audit: new AuditLog(db), processes: new ProcessStore(db), activity: new ActivityStore(db), tasks: new TaskStore(db), secrets: new SecretStore(db) };
}
