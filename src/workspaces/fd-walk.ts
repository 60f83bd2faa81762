import { constants } from 'node:fs';
import { lstat, mkdir, open, opendir, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { AppError } from '../errors.ts';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = constants;

/** The kernel's view of `name` inside an open directory: /proc/self/fd/N/name never re-resolves N. */
export const at = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`;

/** Flags that open a real directory only: a link (or anything else) at the name is refused, never followed. */
export const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** Bounds on one recursive removal, so a hostile tree (deep, huge, or growing while we walk) cannot pin the daemon. */
export interface RemoveLimits {
  /** Deepest directory level below the removed one (each level holds one open descriptor). */
  depth: number;
  /** Most entries removed in one call. */
  entries: number;
  /** Epoch ms after which the walk stops. */
  deadline: number;
}

/** Defaults: deeper than any real project, more entries than a large node_modules, and the in-container rm's 2 minutes. */
export function defaultLimits(now = Date.now()): RemoveLimits {
  return { depth: 1024, entries: 5_000_000, deadline: now + 120_000 };
}

const BATCH = 1024;
/** How often a directory is emptied again when something keeps adding to it during the walk. */
const REFILLS = 8;

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Opens `name` in `parent` as a directory; undefined when it is gone or is not (any longer) a real directory. */
export async function openDirAt(parent: FileHandle, name: string): Promise<FileHandle | undefined> {
  try {
    return await open(at(parent, name), DIR_FLAGS);
  } catch (err) {
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw err;
  }
}

/**
 * Creates directory `name` in `parent` unless it exists, opens it without following a link, and gives it to
 * uid:gid by descriptor when it was made here (an existing one keeps its owner). Refuses anything at the
 * name that is not a real directory.
 */
export async function ensureDirAt(parent: FileHandle, name: string, mode: number, uid: number, gid: number): Promise<{ dir: FileHandle; created: boolean }> {
  let created = false;
  try {
    await mkdir(at(parent, name), { mode });
    created = true;
  } catch (err) {
    if (codeOf(err) !== 'EEXIST') throw err;
  }
  const dir = await openDirAt(parent, name);
  if (!dir) throw Object.assign(new Error(`'${name}' is not a directory (a link or another kind of file); it is never followed`), { code: 'ELOOP' });
  if (created) {
    try {
      await dir.chown(uid, gid);
    } catch (err) {
      await dir.close();
      throw err;
    }
  }
  return { dir, created };
}

/** Up to `max` names of an open directory (read through its descriptor, so the listing is of exactly that directory). */
async function someNames(dir: FileHandle, max: number): Promise<string[]> {
  const names: string[] = [];
  const it = await opendir(`/proc/self/fd/${dir.fd}`, { bufferSize: BATCH });
  try {
    for (let d = await it.read(); d && names.length < max; d = await it.read()) names.push(d.name);
  } finally {
    await it.close().catch(() => undefined);
  }
  return names;
}

class Walk {
  removed = 0;
  private limits: RemoveLimits;
  private dev: number;
  private label: string;

  constructor(limits: RemoveLimits, dev: number, label: string) {
    this.limits = limits;
    this.dev = dev;
    this.label = label;
  }

  private check(depth: number): void {
    if (depth > this.limits.depth) throw new AppError('too_large', `path: '${this.label}' is more than ${this.limits.depth} directories deep; delete its deeper parts first`, { field: 'path' });
    if (this.removed >= this.limits.entries) throw new AppError('too_large', `path: '${this.label}' holds more than ${this.limits.entries} entries; delete it in parts`, { field: 'path' });
    if (Date.now() > this.limits.deadline) throw new AppError('too_large', `path: deleting '${this.label}' took too long and stopped part-way; delete it again (or in parts)`, { field: 'path' });
  }

  /** Removes `name` in `parent`, whatever it is: links, FIFOs, sockets and devices are unlinked, never opened or followed. */
  async remove(parent: FileHandle, name: string, depth: number): Promise<void> {
    this.check(depth);
    // A name can change kind under us any number of times; each pass acts on what is there now.
    for (let pass = 0; pass < REFILLS; pass++) {
      const st = await lstat(at(parent, name)).catch((err) => (codeOf(err) === 'ENOENT' ? undefined : Promise.reject(err)));
      if (!st) return;
      if (!st.isDirectory()) {
        try {
          await unlink(at(parent, name));
          this.removed++;
          return;
        } catch (err) {
          if (codeOf(err) === 'ENOENT') return;
          if (codeOf(err) !== 'EISDIR') throw err;
          continue; // swapped for a directory meanwhile
        }
      }
      const dir = await openDirAt(parent, name);
      if (!dir) continue; // swapped for a link or a file between lstat and open: look again, never follow
      try {
        const inside = await dir.stat();
        // A mount point below the removed tree is another filesystem: never reach into it.
        if (inside.dev !== this.dev) throw new AppError('conflict', `path: '${this.label}' contains a mount point; it cannot be deleted`, { field: 'path' });
        await this.empty(dir, depth);
      } finally {
        await dir.close();
      }
      try {
        await rmdir(at(parent, name));
        this.removed++;
        return;
      } catch (err) {
        const code = codeOf(err);
        if (code === 'ENOENT') return;
        // The name is now a link or a file (rmdir refuses those): the next pass unlinks it.
        // ENOTEMPTY: something added entries after we emptied it: the next pass empties it again.
        if (code !== 'ENOTDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    }
    throw new AppError('conflict', `path: '${this.label}' kept changing while it was deleted; stop what writes to it and retry`, { field: 'path' });
  }

  /** Removes every entry of an open directory, in batches, so a huge directory never becomes one huge array. */
  async empty(dir: FileHandle, depth: number): Promise<void> {
    for (;;) {
      const names = await someNames(dir, BATCH);
      if (!names.length) return;
      for (const name of names) await this.remove(dir, name, depth + 1);
      this.check(depth);
    }
  }
}

/**
 * Removes `name` in the open directory `parent` and, when it is a directory, everything below it, walking
 * by descriptor at every level: each directory is opened with O_NOFOLLOW | O_DIRECTORY relative to its
 * parent's descriptor, every entry is unlinked or removed relative to its own parent's descriptor, and a
 * directory swapped for a link mid-walk has the link removed, never followed. Answers how many entries
 * went. `label` names the path in errors (never a host path).
 */
export async function removeTreeAt(parent: FileHandle, name: string, label: string, limits: RemoveLimits = defaultLimits()): Promise<number> {
  const st = await lstat(at(parent, name));
  const walk = new Walk(limits, st.isDirectory() ? st.dev : (await parent.stat()).dev, label);
  await walk.remove(parent, name, 0);
  return walk.removed;
}

/** Removes the directory at `path` (a directory we made, e.g. a workspace) and all its attacker-controlled contents by descriptor. */
export async function removeTree(parentPath: string, name: string, label: string, limits?: RemoveLimits): Promise<number> {
  let parent: FileHandle;
  try {
    parent = await open(parentPath, DIR_FLAGS);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return 0;
    throw err;
  }
  try {
    return await removeTreeAt(parent, name, label, limits).catch((err) => (codeOf(err) === 'ENOENT' ? 0 : Promise.reject(err)));
  } finally {
    await parent.close();
  }
}
