import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ActivityStore } from './activity.ts';
import { AuditLog } from './audit.ts';
import { openDb, type Db } from './db.ts';
import { ProcessStore } from './processes.ts';
import { SandboxStore } from './sandboxes.ts';
import { TaskStore } from './tasks.ts';

/** Every table family behind one open connection; each thread opens its own. */
export interface Store {
  db: Db;
  sandboxes: SandboxStore;
  audit: AuditLog;
  processes: ProcessStore;
  activity: ActivityStore;
  tasks: TaskStore;
}

/** Opens (creating if needed) `<dataDir>/sandboxed.db` with migrations applied. */
export function openStore(dataDir: string, busyTimeoutMs: number): Store {
  mkdirSync(dataDir, { recursive: true });
  const db = openDb(join(dataDir, 'sandboxed.db'), busyTimeoutMs);
  return { db, sandboxes: new SandboxStore(db), audit: new AuditLog(db), processes: new ProcessStore(db), activity: new ActivityStore(db), tasks: new TaskStore(db) };
}
