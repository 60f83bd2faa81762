import type { Config } from '../src/config.ts';
import { isStorageFailure } from '../src/store/disk.ts';
import { workerContext } from './context.ts';

/** SQLite's own autocheckpoint threshold, in pages: the WAL is checkpointed no sooner than it would have been. */
const CHECKPOINT_PAST_PAGES = 1000;

/**
 * One WAL checkpoint on this worker's own connection, once the WAL is past SQLite's usual threshold. The
 * main thread's connection makes none (it answers every request; a checkpoint copies pages and syncs), so
 * this job keeps the WAL from growing. Answers the WAL's size and what is now in the database (undefined
 * when it was small), or `full` when the disk refused (the daemon already reports a full disk; the next
 * pass tries again).
 */
export function checkpointWal(task: { config: Config }): { walPages: number; checkpointedPages: number } | { full: true } | undefined {
  const { store } = workerContext(task.config, 'maintenance');
  try {
    return store.db.checkpointPast(CHECKPOINT_PAST_PAGES);
  } catch (err) {
    if (isStorageFailure(err)) return { full: true };
    throw err;
  }
}
