import { constants } from 'node:fs';
import { lstat, mkdir, open, opendir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.ts';
import { SANDBOX_GID, SANDBOX_UID } from './workspaces.ts';
import { removeTreeAt } from './fd-walk.ts';
import type { Entry, EntryType } from './workspace-store.ts';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;

/** The kernel's view of a path relative to an open directory: /proc/self/fd/N/name never re-resolves N. */
const at = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`;

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

/** Turns the errors a hostile tree provokes into client errors that name the path. */
function mapError(err: unknown, path: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'EMLINK') throw new AppError('invalid_request', `path: '${path}' goes through a symbolic link; links are not followed`, { field: 'path' });
  if (code === 'ENOTDIR') throw new AppError('invalid_request', `path: a component of '${path}' is not a directory`, { field: 'path' });
  if (code === 'ENOENT') throw new AppError('not_found', `path: '${path}' does not exist`, { field: 'path' });
  if (code === 'EEXIST') throw new AppError('conflict', `path: '${path}' already exists`, { field: 'path' });
  if (code === 'EISDIR') throw new AppError('invalid_request', `path: '${path}' is a directory`, { field: 'path' });
  if (code === 'ENXIO' || code === 'ENODEV') throw new AppError('invalid_request', `path: '${path}' is a FIFO, socket or device, not a regular file`, { field: 'path' });
  if (code === 'ENOTEMPTY') throw new AppError('conflict', `path: '${path}' is a directory that is not empty`, { field: 'path' });
  if (code === 'EINVAL') throw new AppError('invalid_request', `path: '${path}' cannot be moved into itself`, { field: 'path' });
  if (code === 'EPERM' || code === 'EACCES') throw new AppError('conflict', `path: '${path}' (or something in it) cannot be changed: it is protected on the host`, { field: 'path' });
  if (code === 'EBUSY' || code === 'EXDEV') throw new AppError('conflict', `path: '${path}' is a mount point or on another filesystem`, { field: 'path' });
  throw err;
}

/**
 * File operations confined to one directory tree. Every path is walked one component at a time from the
 * root, opening each directory with O_NOFOLLOW | O_DIRECTORY relative to the one before (an openat walk
 * through /proc/self/fd), so no symlink is ever followed and a directory swapped for a link mid-way is
 * refused rather than escaped through.
 */
/**
 * At most `max` names of a directory, read in batches off the main thread: a directory of a million
 * entries costs what the listing returns, not a million-name array and its sort on the request thread.
 */
async function firstNames(path: string, max: number): Promise<string[]> {
  const names: string[] = [];
  const dir = await opendir(path, { bufferSize: 1024 });
  try {
    for (let d = await dir.read(); d && names.length < max; d = await dir.read()) names.push(d.name);
  } finally {
    await dir.close().catch(() => undefined);
  }
  return names;
}

export class ConfinedTree {
  private root: string;
  private shown: string;

  /** `root` is the host directory; `shown` is how clients name it (never the host path). */
  constructor(root: string, shown: string) {
    this.root = root;
    this.shown = shown;
  }

  private label(parts: string[]): string {
    return [this.shown, ...parts].join('/');
  }

  /**
   * Refuses components that are not single names (empty, `.`, `..`, or holding `/` or NUL): walked through
   * /proc/self/fd they would climb out of the tree, or resolve several components at once, following links.
   */
  assertNames(parts: string[]): void {
    if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('/') || p.includes('\0'))) {
      throw new AppError('invalid_request', `path: '${this.label(parts).replace(/\0/g, '\\0')}' has a component that is not a single name (empty, '.', '..', or holding '/' or NUL)`, { field: 'path' });
    }
  }

  /** The root itself; a missing one (a home removed behind our back) is `not_found`, naming no host path. */
  private async openRoot(): Promise<FileHandle> {
    try {
      return await open(this.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') throw new AppError('not_found', `${this.shown}: this sandbox has no workspace on this host (was it purged?)`);
      throw err;
    }
  }

  /** Opens the directory at `parts`, optionally creating missing components (owned by the sandbox user). */
  async openDir(parts: string[], create = false): Promise<FileHandle> {
    this.assertNames(parts);
    let dir = await this.openRoot();
    try {
      for (const [i, part] of parts.entries()) {
        let next: FileHandle;
        try {
          next = await open(at(dir, part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        } catch (err) {
          // O_DIRECTORY answers ENOTDIR for a link before O_NOFOLLOW can say ELOOP: say which it was.
          if ((err as NodeJS.ErrnoException).code === 'ENOTDIR' && (await lstat(at(dir, part)).catch(() => undefined))?.isSymbolicLink()) {
            mapError(Object.assign(new Error('link'), { code: 'ELOOP' }), this.label(parts.slice(0, i + 1)));
          }
          if (!create || (err as NodeJS.ErrnoException).code !== 'ENOENT') mapError(err, this.label(parts.slice(0, i + 1)));
          // Only a directory made here changes owner (by descriptor); one that appeared meanwhile keeps its own.
          const made = await mkdir(at(dir, part), { mode: 0o755 }).then(() => true, (e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? false : mapError(e, this.label(parts.slice(0, i + 1)))));
          next = await open(at(dir, part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW).catch((e) => mapError(e, this.label(parts.slice(0, i + 1))));
          if (made) await next.chown(SANDBOX_UID, SANDBOX_GID).catch(async (e) => { await next.close(); throw e; });
        }
        await dir.close();
        dir = next;
      }
      return dir;
    } catch (err) {
      await dir.close().catch(() => undefined);
      throw err;
    }
  }

  /** Runs fn with the parent directory of `parts` open; `parts` must name something below the root. */
  async inParent<T>(parts: string[], fn: (dir: FileHandle, name: string) => Promise<T>, create = false): Promise<T> {
    if (!parts.length) throw new AppError('invalid_request', 'path: names the home directory itself', { field: 'path' });
    this.assertNames(parts);
    const dir = await this.openDir(parts.slice(0, -1), create);
    try {
      return await fn(dir, parts[parts.length - 1]!);
    } finally {
      await dir.close();
    }
  }

  /** What the last component is, without following it; undefined when it does not exist. */
  async stat(parts: string[]): Promise<Entry | undefined> {
    if (!parts.length) {
      const root = await this.openRoot();
      try {
        const st = await root.stat();
        return { name: '', type: 'dir', size: st.size, mtime: st.mtime.toISOString() };
      } finally {
        await root.close();
      }
    }
    return this.inParent(parts, async (dir, name) => {
      try {
        const st = await lstat(at(dir, name));
        return { name, type: typeOf(st), size: st.size, mtime: st.mtime.toISOString() };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        return mapError(err, this.label(parts));
      }
    });
  }

  /** Entries of a directory (recursive: every level, up to `limit` entries), paths relative to it. */
  async list(parts: string[], recursive: boolean, limit: number): Promise<{ entries: (Entry & { path: string })[]; truncated: boolean }> {
    const out: (Entry & { path: string })[] = [];
    let truncated = false;
    const walk = async (dirParts: string[], prefix: string) => {
      const dir = await this.openDir(dirParts);
      try {
        const names = (await firstNames(`/proc/self/fd/${dir.fd}`, limit - out.length + 1)).sort();
        for (const name of names) {
          if (out.length >= limit) return void (truncated = true);
          const st = await lstat(at(dir, name)).catch(() => undefined);
          if (!st) continue; // removed while we listed
          const entry = { name, path: prefix + name, type: typeOf(st), size: st.size, mtime: st.mtime.toISOString() };
          out.push(entry);
          if (recursive && entry.type === 'dir') await walk([...dirParts, name], `${entry.path}/`);
        }
      } finally {
        await dir.close();
      }
    };
    await walk(parts, '');
    return { entries: out, truncated };
  }

  /** Opens a regular file for reading; links, FIFOs and devices are refused (O_NONBLOCK: a FIFO cannot hang us). */
  async openForRead(parts: string[]): Promise<{ handle: FileHandle; size: number }> {
    return this.inParent(parts, async (dir, name) => {
      // Looked at before opening: opening a device node as root can have effects of its own.
      const pre = await lstat(at(dir, name)).catch((e) => mapError(e, this.label(parts)));
      if (!pre.isFile()) {
        throw new AppError('invalid_request', `path: '${this.label(parts)}' is ${pre.isDirectory() ? 'a directory' : pre.isSymbolicLink() ? 'a symbolic link; links are not followed' : 'a FIFO, socket or device, not a regular file'}`, { field: 'path' });
      }
      const handle = await open(at(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch((e) => mapError(e, this.label(parts)));
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        throw new AppError('invalid_request', `path: '${this.label(parts)}' is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`, { field: 'path' });
      }
      return { handle, size: st.size };
    });
  }

  /**
   * Writes a file atomically: the bytes go to a new temp file in the same directory, owned by the sandbox
   * user, which then replaces the target by rename (a link at the target is replaced, never followed).
   */
  async writeAtomic(parts: string[], body: AsyncIterable<Buffer> | Buffer, mode = 0o644): Promise<number> {
    return this.inParent(parts, async (dir, name) => {
      const existing = await lstat(at(dir, name)).catch(() => undefined);
      if (existing?.isDirectory()) throw new AppError('invalid_request', `path: '${this.label(parts)}' is a directory`, { field: 'path' });
      if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
        throw new AppError('invalid_request', `path: '${this.label(parts)}' is a FIFO, socket or device; remove it first`, { field: 'path' });
      }
      const tmp = `.${name.slice(0, 200)}.sandboxed-${randomBytes(6).toString('hex')}.tmp`;
      const handle = await open(at(dir, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      let written = 0;
      try {
        await handle.chown(SANDBOX_UID, SANDBOX_GID);
        for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
          await handle.write(chunk);
          written += chunk.length;
        }
        await handle.close();
        await rename(at(dir, tmp), at(dir, name));
        return written;
      } catch (err) {
        await handle.close().catch(() => undefined);
        await unlink(at(dir, tmp)).catch(() => undefined);
        throw err;
      }
    }, true);
  }

  /** Appends to a regular file, creating it (owned by the sandbox user) when missing; a stream is written as it arrives. */
  async append(parts: string[], data: AsyncIterable<Buffer> | Buffer): Promise<number> {
    return this.inParent(parts, async (dir, name) => {
      // Only a file made here is given to the sandbox user: an existing one (perhaps a hard link to a file
      // outside the workspace) keeps its owner.
      let created = true;
      const handle = await open(at(dir, name), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o644).catch((e) => {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return mapError(e, this.label(parts));
        created = false;
        return open(at(dir, name), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK).catch((e2) => mapError(e2, this.label(parts)));
      });
      try {
        const st = await handle.stat();
        if (!st.isFile()) throw new AppError('invalid_request', `path: '${this.label(parts)}' is not a regular file`, { field: 'path' });
        // Appending writes in place: through a hard link that would change a file with another name.
        if (st.nlink > 1) throw new AppError('invalid_request', `path: '${this.label(parts)}' is a hard link shared with another file; write the whole file instead of appending`, { field: 'path' });
        if (created) await handle.chown(SANDBOX_UID, SANDBOX_GID);
        let written = 0;
        for await (const chunk of Buffer.isBuffer(data) ? [data] : data) {
          await handle.write(chunk);
          written += chunk.length;
        }
        return written;
      } finally {
        await handle.close();
      }
    }, true);
  }

  /** Creates a directory and any missing parents. */
  async mkdirs(parts: string[]): Promise<void> {
    await (await this.openDir(parts, true)).close();
  }

  /** Renames within the tree; neither side's last component is followed. */
  async move(from: string[], to: string[], overwrite: boolean): Promise<void> {
    await this.inParent(from, (src, fromName) => this.inParent(to, async (dst, toName) => {
      await lstat(at(src, fromName)).catch((e) => mapError(e, this.label(from)));
      const target = await lstat(at(dst, toName)).catch(() => undefined);
      if (target && !overwrite) throw new AppError('conflict', `to: '${this.label(to)}' exists; pass overwrite: true to replace it`, { field: 'to' });
      await rename(at(src, fromName), at(dst, toName)).catch((e) => mapError(e, this.label(to)));
    }, true));
  }

  /**
   * Removes a file, link, FIFO, socket or device node (never opened, never followed), or an empty
   * directory, or (recursive) a directory and everything in it, walking by descriptor at every level
   * (fd-walk.ts), so a directory swapped for a link mid-way has the link removed, not what it points at.
   */
  async remove(parts: string[], recursive: boolean): Promise<void> {
    await this.inParent(parts, async (dir, name) => {
      const st = await lstat(at(dir, name)).catch((e) => mapError(e, this.label(parts)));
      if (!st.isDirectory()) return void (await unlink(at(dir, name)).catch((e) => mapError(e, this.label(parts))));
      if (!recursive) return void (await rmdir(at(dir, name)).catch((e) => mapError(e, this.label(parts))));
      await removeTreeAt(dir, name, this.label(parts)).catch((e) => (e instanceof AppError ? Promise.reject(e) : mapError(e, this.label(parts))));
    });
  }
}
