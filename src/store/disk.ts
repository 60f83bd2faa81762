import { randomFillSync } from 'node:crypto';
import { existsSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../errors.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Db } from './db.ts';

/** SQLite's primary result codes for a disk that refuses writes (extended IOERR codes share the low byte). */
const SQLITE_IOERR = 10;
const SQLITE_FULL = 13;
/**
 * What those failures say when no code survives: Deno's `exec()` errors carry only `code` and the message,
 * and an error that crossed a worker boundary keeps only its message.
 */
const STORAGE_MESSAGE = /database or disk is full|disk I\/O error|no space left on device|disk quota exceeded|ENOSPC|EDQUOT|the data disk is full or failing/i;
/** errno codes of a file write the disk refused (EROFS: a filesystem remounted read-only after errors). */
const STORAGE_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);

/** Retry-After on a refused write: space rarely comes back within seconds. */
export const STORAGE_RETRY_AFTER_S = 30;

/** True for a write the disk refused: SQLITE_FULL, SQLITE_IOERR*, or ENOSPC-class errors from the filesystem. */
export function isStorageFailure(err: unknown): boolean {
  if (err instanceof StorageError) return true;
  if (!err || typeof err !== 'object') return false;
  const e = err as { errcode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.errcode === 'number' && (e.errcode & 0xff) === SQLITE_FULL) return true;
  if (typeof e.errcode === 'number' && (e.errcode & 0xff) === SQLITE_IOERR) return true;
  if (typeof e.code === 'string' && STORAGE_ERRNO.has(e.code)) return true;
  return typeof e.message === 'string' && STORAGE_MESSAGE.test(e.message);
}

/** A write refused by the data disk, as the client sees it: 503 `capacity`, retryable, naming the directory. */
export class StorageError extends AppError {
  override readonly cause: unknown;

  constructor(dataDir: string, cause: unknown) {
    super('capacity', `the data disk is full or failing (${errorMessage(cause)}): writes are refused until space is freed; free space in ${dataDir}, then retry`, { data_dir: dataDir }, STORAGE_RETRY_AFTER_S);
    this.cause = cause;
  }
}

/** Free and total bytes of the filesystem holding `dir`, as an unprivileged writer (a sandbox) sees them. */
export function diskSpace(dir: string): { freeBytes: number; totalBytes: number } {
  const s = statfsSync(dir);
  return { freeBytes: Number(s.bavail) * Number(s.bsize), totalBytes: Number(s.blocks) * Number(s.bsize) };
}

const MIB = 1024 * 1024;
/** Human-sized MiB for messages. */
export const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/** The data disk's state for /readyz and the admission gate: a problem sentence, or undefined when fine. */
export function diskProblem(dir: string, minFreeBytes: number, lastFailure?: { at: number; message: string }): { freeBytes: number | null; problem: string | undefined } {
  let freeBytes: number | null = null;
  try {
    freeBytes = diskSpace(dir).freeBytes;
  } catch (err) {
    return { freeBytes, problem: `cannot read the free space of ${dir}: ${errorMessage(err)}` };
  }
  if (freeBytes < minFreeBytes) {
    return { freeBytes, problem: `the data disk has ${mib(freeBytes)} free in ${dir}, below the ${mib(minFreeBytes)} watermark (SANDBOXD_MIN_FREE_MB): creates and wakes are refused; free space in ${dir}` };
  }
  if (lastFailure && Date.now() - lastFailure.at < RECENT_FAILURE_MS) {
    return { freeBytes, problem: `a write to ${dir} failed ${Math.round((Date.now() - lastFailure.at) / 1000)} s ago (${lastFailure.message}); free space in ${dir} or check the disk` };
  }
  return { freeBytes, problem: undefined };
}

/** A storage failure keeps /readyz at 503 this long after it happened (it clears by itself once writes stop failing). */
const RECENT_FAILURE_MS = 15_000;

/**
 * Bytes kept in a ballast file beside the database. A daemon shut down cleanly leaves no WAL index (-shm),
 * and SQLite cannot even read without creating one (32 KiB) plus some WAL: on a full disk the next boot
 * deletes the ballast to make that room, so it still serves reads. Random bytes, so a compressing
 * filesystem really sets the space aside.
 */
const RESERVE_BYTES = 4 * MIB;
const reservePath = (dataDir: string) => join(dataDir, '.sandboxd-reserve');

/** Writes the ballast file when it is missing and the disk has room to spare for it; answers whether it exists. */
export function ensureReserve(dataDir: string, minFreeBytes: number): boolean {
  const path = reservePath(dataDir);
  if (existsSync(path)) return true;
  try {
    if (diskSpace(dataDir).freeBytes - RESERVE_BYTES < Math.max(minFreeBytes, RESERVE_BYTES)) return false;
    writeFileSync(`${path}.tmp`, randomFillSync(Buffer.allocUnsafe(RESERVE_BYTES)), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
    return true;
  } catch {
    rmSync(`${path}.tmp`, { force: true });
    return false;
  }
}

/** Deletes the ballast file to give SQLite room; answers whether there was one. */
export function releaseReserve(dataDir: string): boolean {
  const path = reservePath(dataDir);
  if (!existsSync(path)) return false;
  rmSync(path, { force: true });
  return true;
}

/**
 * Watches the data disk every `everyMs` from the main thread: logs when it crosses the watermark and when
 * writes failed since the last look (one line per interval, not one per write), and writes the ballast
 * back once there is room again. Answers a function that stops it.
 */
export function watchDataDisk(db: Db, minFreeBytes: number, log: Logger, everyMs = 10_000): () => void {
  let below = false;
  let seen = db.storageFailures;
  const tick = () => {
    try {
      const { freeBytes } = diskSpace(db.dir);
      const fields = { data_dir: db.dir, free_bytes: freeBytes, min_free_bytes: minFreeBytes };
      if (freeBytes < minFreeBytes !== below) {
        below = !below;
        if (below) log.warn(`the data disk is below its free-space watermark: creates and wakes are refused; free space in ${db.dir}`, fields);
        else log.info('the data disk has room again: creates and wakes are admitted', fields);
      }
      if (db.storageFailures > seen) {
        log.warn(`writes to the data disk failed; free space in ${db.dir}`, { ...fields, failures: db.storageFailures - seen, last: db.lastStorageFailure?.message });
        seen = db.storageFailures;
      }
      ensureReserve(db.dir, minFreeBytes);
    } catch (err) {
      log.warn('cannot read the data disk\'s free space', { data_dir: db.dir, error: errorMessage(err) });
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
