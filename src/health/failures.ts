import { AppError } from '../errors.ts';
import { runtimeFailureOf } from '../runtime/runtime.ts';
import { isStorageFailure, StorageError } from '../store/disk.ts';
import { isWorkspaceFull } from '../workspaces/volumes.ts';

/**
 * How a failure of a part below the services reads to a client: the runtime not answering (503, retry), a
 * sandbox's own size-limited workspace full (the tenant's to fix), the data disk full or failing (503 naming
 * it). Anything else is answered unchanged (an AppError as itself, the rest as an internal error).
 */
export function clientErrorOf(thrown: unknown, dataDir: string): { err: unknown; engineDown: boolean } {
  if (runtimeFailureOf(thrown) === 'unreachable') {
    return { err: new AppError('sandbox_unavailable', 'the container engine (Docker) is not answering; retry shortly', undefined, 5), engineDown: true };
  }
  if (thrown instanceof AppError) return { err: thrown, engineDown: false };
  // ENOSPC from a sandbox's own size-limited workspace is the tenant's to fix, not a data-disk outage.
  if (isWorkspaceFull(thrown, dataDir)) {
    return { err: new AppError('workspace_full', "the sandbox's workspace is at its size limit (resources.disk_mb): delete files in it, or recreate the sandbox with a larger resources.disk_mb"), engineDown: false };
  }
  // A file write that hit ENOSPC, or a storage error that crossed a worker boundary: 503 naming the data dir.
  return { err: isStorageFailure(thrown) ? new StorageError(dataDir, thrown) : thrown, engineDown: false };
}
