import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';

/** Directories in the data dir are root-only. */
export const DIR_MODE = 0o700;
/** Files in the data dir (the database and its WAL/SHM, the preview key, the reserve, spooled uploads) are root-only. */
export const FILE_MODE = 0o600;

/** Where a mode was wrong at boot and what it was: the boot check logs each one. */
export interface ModeFix {
  path: string;
  was: number;
  now: number;
}

/**
 * Opens `path` without following a link and gives it `mode` when it is a directory or a regular file whose
 * mode has any group/other bit (or differs for the top directory); answers the fix, if one was made. Links,
 * sockets and anything else are left alone: a link in the data dir is not ours to chase.
 */
function fixOne(path: string, dirMode: number, fileMode: number, exact: boolean): ModeFix | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOENT' || code === 'ENXIO') return undefined;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    const want = st.isDirectory() ? dirMode : st.isFile() ? fileMode : undefined;
    if (want === undefined) return undefined;
    const was = st.mode & 0o7777;
    // Children only lose access for others: a file the daemon made 0400 stays 0400.
    const now = exact ? want : was & want;
    if (was === now) return undefined;
    fchmodSync(fd, now);
    return { path, was, now };
  } finally {
    closeSync(fd);
  }
}

/**
 * The boot check of the data dir: the dir itself becomes 0700 and every entry directly in it (and in the
 * spool) loses its group and other bits, so no local user reads the database (every sandbox's env), the
 * preview key or an upload. Workspace homes under `workspaces/` are the tenants' and are not touched. Each
 * fix is logged with the file and its old mode; answers the fixes.
 */
export function secureDataDir(dataDir: string, log?: Logger): ModeFix[] {
  mkdirSync(dataDir, { recursive: true, mode: DIR_MODE });
  const fixes: ModeFix[] = [];
  const top = fixOne(dataDir, DIR_MODE, FILE_MODE, true);
  if (top) fixes.push(top);
  for (const name of readdirSync(dataDir)) {
    const fix = fixOne(join(dataDir, name), DIR_MODE, FILE_MODE, false);
    if (fix) fixes.push(fix);
  }
  let spooled: string[] = [];
  try {
    spooled = readdirSync(join(dataDir, 'spool'));
  } catch {
    // no spool yet (a first boot) or it is not a directory we own: resetSpool deals with it
  }
  for (const name of spooled) {
    const fix = fixOne(join(dataDir, 'spool', name), DIR_MODE, FILE_MODE, false);
    if (fix) fixes.push(fix);
  }
  for (const f of fixes) {
    log?.warn(`${f.path} was readable by other users (mode ${octal(f.was)}); changed to ${octal(f.now)}`, { path: f.path, old_mode: octal(f.was), mode: octal(f.now) });
  }
  return fixes;
}

/**
 * Makes `path` exist as a 0600 file before SQLite opens it (an empty file is an empty database), whatever the
 * umask. SQLite creates the -wal and -shm files with the database file's mode, so they are 0600 too.
 */
export function precreatePrivate(path: string): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, FILE_MODE);
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, fstatSync(fd).mode & 0o7700);
  } finally {
    closeSync(fd);
  }
}

const octal = (mode: number) => `0${mode.toString(8)}`;
