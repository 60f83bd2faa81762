import { AppError } from '../errors.ts';
import { archiveOf } from './archive-out.ts';
import { receiveArchive } from './archive-in.ts';
import { ConfinedTree } from './safe-fs.ts';
import type { DiskUsage } from '../model/sandbox.ts';
import type { ArchiveUpload, Entry, FileBytes, ListedEntry, WorkspaceStore } from './workspace-store.ts';
import type { Workspaces } from './workspaces.ts';

/**
 * Workspaces as host directories (each a loop-mounted image, see volume-set.ts) that the daemon edits
 * itself, by descriptor, whether or not the sandbox's container runs.
 */
export class HostWorkspaceStore implements WorkspaceStore {
  private workspaces: Workspaces;
  private dataDir: string;

  /** `dataDir` holds the spool that uploads wait in. */
  constructor(workspaces: Workspaces, dataDir: string) {
    this.workspaces = workspaces;
    this.dataDir = dataDir;
  }

  /** A sandbox's home as a confined tree, named `~` in errors (never by its host path). */
  private tree(sandboxId: string): ConfinedTree {
    return new ConfinedTree(this.workspaces.dir(sandboxId), '~');
  }

  stat(sandboxId: string, parts: string[]): Promise<Entry | undefined> {
    return this.tree(sandboxId).stat(parts);
  }

  list(sandboxId: string, parts: string[], recursive: boolean, limit: number): Promise<{ entries: ListedEntry[]; truncated: boolean }> {
    return this.tree(sandboxId).list(parts, recursive, limit);
  }

  async read(sandboxId: string, parts: string[], range: { offset?: number | undefined; length?: number | undefined }, maxBytes: number): Promise<FileBytes> {
    const { handle, size } = await this.tree(sandboxId).openForRead(parts);
    try {
      const ranged = range.offset !== undefined || range.length !== undefined;
      const start = Math.min(range.offset ?? 0, size);
      const length = Math.min(range.length ?? size - start, size - start);
      if (length > maxBytes) {
        throw new AppError('too_large', ranged
          ? `length ${length} is above the read limit of ${maxBytes} bytes; ask for a smaller range`
          : `the file is ${size} bytes, above the read limit of ${maxBytes}; read it in ranges with offset and length`);
      }
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, start);
      return { data: buf.subarray(0, bytesRead), size, offset: start };
    } finally {
      await handle.close();
    }
  }

  write(sandboxId: string, parts: string[], body: AsyncIterable<Buffer> | Buffer): Promise<number> {
    return this.tree(sandboxId).writeAtomic(parts, body);
  }

  append(sandboxId: string, parts: string[], body: AsyncIterable<Buffer> | Buffer): Promise<number> {
    return this.tree(sandboxId).append(parts, body);
  }

  mkdirs(sandboxId: string, parts: string[]): Promise<void> {
    return this.tree(sandboxId).mkdirs(parts);
  }

  move(sandboxId: string, from: string[], to: string[], overwrite: boolean): Promise<void> {
    return this.tree(sandboxId).move(from, to, overwrite);
  }

  remove(sandboxId: string, parts: string[]): Promise<void> {
    // One unlink or rmdir relative to the parent's descriptor: atomic, safe whether or not the sandbox runs.
    return this.tree(sandboxId).remove(parts, false);
  }

  removeTree(sandboxId: string, parts: string[]): Promise<void> {
    // A walk by descriptor at every level (fd-walk.ts); the caller holds the sandbox stopped, so no wake runs an app under it.
    return this.tree(sandboxId).remove(parts, true);
  }

  archive(sandboxId: string, parts: string[]): Promise<AsyncIterable<Buffer>> {
    return archiveOf(this.tree(sandboxId), parts);
  }

  receiveArchive(sandboxId: string, parts: string[], body: AsyncIterable<Buffer>): Promise<ArchiveUpload> {
    return receiveArchive(this.tree(sandboxId), this.dataDir, parts, body);
  }

  diskUsage(sandboxId: string): Promise<DiskUsage | null> {
    return this.workspaces.diskUsage(sandboxId);
  }
}
