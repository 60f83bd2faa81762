import type { DiskUsage } from '../model/sandbox.ts';

/** What a path names inside a workspace. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

/** One name in a workspace, as listings and stats show it. */
export interface Entry {
  name: string;
  type: EntryType;
  size: number;
  mtime: string;
}

/** A listing's entry: its path relative to the listed directory. */
export type ListedEntry = Entry & { path: string };

/** The bytes of a regular file (or of a range of it), with the whole file's size. */
export interface FileBytes {
  data: Buffer;
  size: number;
  /** Where `data` starts in the file. */
  offset: number;
}

/**
 * An uploaded tar, checked whole (every entry's path planned) but not yet written: the counts are what
 * `unpack` will create. `close()` drops the upload, unpacked or not.
 */
export interface ArchiveUpload {
  files: number;
  dirs: number;
  /** Links, devices and FIFOs in the archive: never created from an upload. */
  skipped: number;
  /** Writes every planned entry; stops (throwing) once `abandoned()` answers true or the unpack deadline passes. */
  unpack(abandoned: () => boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Everything that touches the content of a sandbox's workspace (its home, /home/sandbox), keyed by sandbox
 * id: the boundary a second backend (Kubernetes PersistentVolumeClaims) implements. Paths are components
 * below the home (`[]` is the home itself), each a single name: an empty, `.` or `..` component, or one
 * holding `/` or NUL, is refused (invalid_request) whoever resolved the path. No host path ever crosses this
 * interface. Every operation is confined to the home: no link is followed at any depth, a
 * directory swapped for a link mid-way is refused rather than escaped through, and FIFOs, sockets and
 * devices are never opened. Errors are AppErrors that name the path as the sandbox sees it.
 */
export interface WorkspaceStore {
  /** What the last component is, without following it; undefined when it does not exist. */
  stat(sandboxId: string, parts: string[]): Promise<Entry | undefined>;
  /** Entries of a directory (recursive: every level), at most `limit` of them, sorted by name per level. */
  list(sandboxId: string, parts: string[], recursive: boolean, limit: number): Promise<{ entries: ListedEntry[]; truncated: boolean }>;
  /** A regular file's bytes, or the range `offset`/`length` of them; more than `maxBytes` is refused (too_large) before any is read. */
  read(sandboxId: string, parts: string[], range: { offset?: number | undefined; length?: number | undefined }, maxBytes: number): Promise<FileBytes>;
  /** Replaces a file atomically with `body` as it streams in (owned by the sandbox user); answers the bytes written. */
  write(sandboxId: string, parts: string[], body: AsyncIterable<Buffer> | Buffer): Promise<number>;
  /** Appends to a regular file, creating it when missing; answers the bytes written. */
  append(sandboxId: string, parts: string[], body: AsyncIterable<Buffer> | Buffer): Promise<number>;
  /** Creates a directory and any missing parents. */
  mkdirs(sandboxId: string, parts: string[]): Promise<void>;
  /** Renames within the workspace; an existing target is a conflict unless `overwrite`. */
  move(sandboxId: string, from: string[], to: string[], overwrite: boolean): Promise<void>;
  /** Removes a file, link, FIFO, socket or device node, or an empty directory (a non-empty one is a conflict). */
  remove(sandboxId: string, parts: string[]): Promise<void>;
  /** Removes a directory and everything in it. Only while the sandbox is stopped, under its lifecycle lock. */
  removeTree(sandboxId: string, parts: string[]): Promise<void>;
  /**
   * A tar of a directory (links, FIFOs and devices left out), ending with the end-of-archive blocks. The
   * listing is taken before this answers, so a directory too large to archive is refused (too_large) before
   * the first byte; the files are read as the stream is consumed.
   */
  archive(sandboxId: string, parts: string[]): Promise<AsyncIterable<Buffer>>;
  /** Takes in a tar (the caller caps its size) and checks it whole, writing nothing until `unpack`. */
  receiveArchive(sandboxId: string, parts: string[], body: AsyncIterable<Buffer>): Promise<ArchiveUpload>;
  /** Used and allowed MiB of the workspace; null when it has no size limit to report (not yet converted, unmounted). */
  diskUsage(sandboxId: string): Promise<DiskUsage | null>;
}
