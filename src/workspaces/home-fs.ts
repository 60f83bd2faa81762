import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { at, DIR_FLAGS, ensureDirAt, openDirAt } from './fd-walk.ts';
import type { TarEntry } from './tar.ts';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Says what to do when the daemon may not give files away. */
function ownerError(err: unknown, what: string, uid: number): unknown {
  if (codeOf(err) !== 'EPERM') return err;
  return new Error(`cannot give ${what} to uid ${uid}: the daemon must run as root (or with CAP_CHOWN) to own sandbox workspaces`);
}

/**
 * Makes each directory of `chain` exist below `rootPath`, one inside the next, opened by descriptor with
 * O_NOFOLLOW and given to uid:gid (by descriptor) when made here. A link or file planted at any level is
 * refused, never followed. Answers whether the first directory was made.
 */
export async function ensureChain(rootPath: string, chain: string[], uid: number, gid: number): Promise<boolean> {
  let dir = await open(rootPath, DIR_FLAGS);
  let first = false;
  try {
    for (const [i, name] of chain.entries()) {
      const next = await ensureDirAt(dir, name, 0o755, uid, gid).catch((err) => Promise.reject(ownerError(err, chain.slice(0, i + 1).join('/'), uid)));
      if (i === 0) first = next.created;
      await dir.close();
      dir = next.dir;
    }
    return first;
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/** Opens the directory at `parts` below `home` without creating or following anything; undefined when any level is not a real directory. */
async function openExisting(home: string, parts: string[]): Promise<FileHandle | undefined> {
  let dir = await open(home, DIR_FLAGS);
  for (const part of parts) {
    const next = await openDirAt(dir, part).finally(() => dir.close());
    if (!next) return undefined;
    dir = next;
  }
  return dir;
}

/** Creates one skeleton entry in `parent` unless something is already there; answers whether it did. */
async function createEntry(parent: FileHandle, name: string, entry: TarEntry, uid: number, gid: number): Promise<boolean> {
  const mode = entry.mode & 0o777;
  if (entry.type === 'dir') {
    try {
      await mkdir(at(parent, name), { mode });
    } catch (err) {
      if (codeOf(err) === 'EEXIST') return false;
      throw err;
    }
    const made = await openDirAt(parent, name);
    if (!made) return false; // replaced by a link the instant it was made: leave it alone
    try {
      await made.chown(uid, gid);
    } finally {
      await made.close();
    }
    return true;
  }
  // O_EXCL | O_NOFOLLOW: an existing name (a link, a hard link, a FIFO) is left as it is, never opened.
  let file: FileHandle;
  try {
    file = await open(at(parent, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    await file.chown(uid, gid);
    await file.writeFile(entry.data);
  } finally {
    await file.close();
  }
  return true;
}

/**
 * Copies skeleton entries (paths relative to the home, already split) into `home`, each created relative
 * to its parent's descriptor: nothing existing is replaced, no link at any level is followed, and only
 * directories and regular files are made. Answers how many entries were made.
 */
export async function seedInto(home: string, entries: { parts: string[]; entry: TarEntry }[], uid: number, gid: number): Promise<number> {
  let written = 0;
  for (const { parts, entry } of entries) {
    if (entry.type !== 'dir' && entry.type !== 'file') continue;
    const parent = await openExisting(home, parts.slice(0, -1));
    if (!parent) continue;
    try {
      if (await createEntry(parent, parts[parts.length - 1]!, entry, uid, gid).catch((err) => Promise.reject(ownerError(err, parts.join('/'), uid)))) written++;
    } finally {
      await parent.close();
    }
  }
  return written;
}
