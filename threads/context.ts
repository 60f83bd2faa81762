import type { Config } from '../src/config.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { createRuntime } from '../src/runtime/factory.ts';
import type { Runtime } from '../src/runtime/runtime.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { setSandboxOwner, Workspaces } from '../src/workspaces/workspaces.ts';

/** A worker thread's own connections: its SQLite handle and its Docker client, opened once per thread. */
export interface WorkerContext {
  config: Config;
  store: Store;
  runtime: Runtime;
  workspaces: Workspaces;
  log: Logger;
}

let context: WorkerContext | undefined;

/** The context for this thread, built on first use from the config the main thread sent. */
export function workerContext(config: Config, scope: string): WorkerContext {
  // The workspace owner comes from the config this thread was sent, before any workspace is touched.
  if (!context) setSandboxOwner(config.sandboxUid, config.sandboxGid);
  context ??= {
    config,
    store: openStore(config.dataDir, config.sqliteBusyTimeoutMs),
    runtime: createRuntime(config),
    workspaces: new Workspaces(config.dataDir),
    log: createLogger(config.logLevel, scope),
  };
  return context;
}
