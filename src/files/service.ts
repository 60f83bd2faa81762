import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { execFailure } from '../exec/failure.ts';
import type { SessionLimits } from '../exec/sessions.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { WorkerPool } from '../pool.ts';
import type { Actor, Lifecycle } from '../sandboxes/lifecycle.ts';
import type { AuditEntry } from '../store/audit.ts';
import { APP_DIR_IN_HOME, HOME_IN_SANDBOX, resolveWorkspacePath } from '../workspaces/paths.ts';
import type { FileBytes, ListedEntry, WorkspaceStore } from '../workspaces/workspace-store.ts';

const LIST_LIMIT = 10_000;

/** What the files service is built from; each part is the narrowest thing it needs. */
export interface FilesDeps {
  config: Pick<Config, 'fileReadMaxBytes'>;
  workspaces: WorkspaceStore;
  audit: (entry: AuditEntry) => void;
  lifecycle: Pick<Lifecycle, 'whileStopped'>;
  /** Whether the sandbox's container runs now (asked of the runtime, not the row). */
  isRunning: (sandboxId: string) => Promise<boolean>;
  pool: Pick<WorkerPool, 'exec'>;
  sessions: Pick<SessionLimits, 'take'>;
}

/** Where a client path came in: errors about a body field name it `body.<field>`. */
export type PathSource = 'query' | 'body';

/** A directory's listing. */
export interface DirListing {
  path: string;
  type: 'dir';
  entries: ListedEntry[];
  truncated: boolean;
}

/** A file's bytes (or a range of them). */
export interface FileContent extends FileBytes {
  path: string;
  type: 'file';
}

/** A directory's tar, ready to stream: `close()` gives back its session slot once the stream has ended or failed. */
export interface ArchiveDownload {
  /** The directory's own name, for the download's file name. */
  name: string;
  chunks: AsyncIterable<Buffer>;
  close(): void;
}

/**
 * The files of a sandbox's workspace, for the files and archive routes: client paths resolved under the home,
 * the app directory kept in place, every change audited, and recursive deletes done host-side while the
 * sandbox is stopped or by `rm` inside it while it runs. Works whether or not the sandbox runs.
 */
export class Files {
  private deps: FilesDeps;

  constructor(deps: FilesDeps) {
    this.deps = deps;
  }

  /** A directory's listing, or a file's bytes (or the range `offset`/`length` of them). */
  async read(rec: SandboxRecord, q: { path?: string | undefined; recursive?: boolean | undefined; offset?: number | undefined; length?: number | undefined }): Promise<DirListing | FileContent> {
    const target = resolveWorkspacePath(q.path ?? '.');
    const entry = await this.deps.workspaces.stat(rec.id, target.parts);
    if (!entry) throw new AppError('not_found', `path: '${q.path ?? '.'}' does not exist`, { field: 'path' });
    if (entry.type === 'dir') {
      const { entries, truncated } = await this.deps.workspaces.list(rec.id, target.parts, q.recursive ?? false, LIST_LIMIT);
      return { path: target.inSandbox, type: 'dir', entries, truncated };
    }
    const bytes = await this.deps.workspaces.read(rec.id, target.parts, { offset: q.offset, length: q.length }, this.deps.config.fileReadMaxBytes);
    return { path: target.inSandbox, type: 'file', ...bytes };
  }

  /** Writes a file atomically, or appends to it, from bytes or a stream (the caller caps its size). */
  async write(rec: SandboxRecord, actor: Actor, w: { path: string; source: PathSource; data: AsyncIterable<Buffer> | Buffer; append: boolean }): Promise<{ path: string; bytes: number; appended: boolean }> {
    const target = resolveWorkspacePath(w.path, w.source === 'body' ? 'body.path' : 'path');
    const bytes = w.append ? await this.deps.workspaces.append(rec.id, target.parts, w.data) : await this.deps.workspaces.write(rec.id, target.parts, w.data);
    this.audit(actor, rec, w.append ? 'files.append' : 'files.write', { path: w.path, bytes });
    return { path: target.inSandbox, bytes, appended: w.append };
  }

  /** Deletes a file, a link, an empty directory, or (recursive) a whole directory. */
  async remove(rec: SandboxRecord, actor: Actor, d: { path: string; recursive?: boolean | undefined }): Promise<{ path: string; deleted: true }> {
    const target = resolveWorkspacePath(d.path);
    const app = APP_DIR_IN_HOME.join('/');
    if (target.parts.length === 0 || target.parts.join('/') === app || app.startsWith(`${target.parts.join('/')}/`)) {
      throw new AppError('invalid_request', `path: ${target.inSandbox} holds the app directory, which always exists; delete what is inside it instead`, { field: 'path' });
    }
    const entry = await this.deps.workspaces.stat(rec.id, target.parts);
    if (!entry) throw new AppError('not_found', `path: '${d.path}' does not exist`, { field: 'path' });
    const recursive = d.recursive ?? false;
    const done = () => this.audit(actor, rec, 'files.delete', { path: d.path, recursive });
    if (entry.type !== 'dir' || !recursive) {
      // Never recursive here: a running sandbox that swapped the file for a directory since the stat would
      // otherwise get a host-side walk outside its lifecycle lock (a non-empty directory answers 409).
      await this.deps.workspaces.remove(rec.id, target.parts);
      done();
      return { path: target.inSandbox, deleted: true };
    }
    // A stopped sandbox's tree is removed host-side by descriptor, under its lifecycle lock: a wake (one
    // preview request) waits until the walk is over instead of starting an app that swaps directories under it.
    // The walk takes a session slot too: a tenant's concurrent deletes of huge trees are capped (429) like
    // its execs, so they cannot hold the process's descriptors and I/O threads.
    const releaseWalk = this.deps.sessions.take(rec, 'files_delete');
    const host = await this.deps.lifecycle.whileStopped(rec.id, async () => {
      await this.deps.workspaces.removeTree(rec.id, target.parts);
      done();
    }).finally(releaseWalk);
    if (!host.ran) {
      if (!(await this.deps.isRunning(rec.id))) {
        throw new AppError('conflict', `the sandbox is ${host.status}; retry the delete in a moment`, { status: host.status });
      }
      // Inside the running container rm can only ever reach the sandbox's own files.
      // It holds an exec slot up to 2 minutes: it takes a session slot, so a flood of deletes is refused 429.
      const release = this.deps.sessions.take(rec, 'files_delete', { liveOnly: true });
      const r = await Promise.resolve()
        .then(() => this.deps.pool.exec({ sandboxId: rec.id, spec: { cmd: ['rm', '-rf', '--', target.inSandbox], cwd: HOME_IN_SANDBOX }, capBytes: 65536, timeoutMs: 120_000 }).result)
        .catch((err) => { throw execFailure(err); })
        .finally(release);
      if (r.exit_code !== 0) throw new AppError('sandbox_unavailable', `the delete did not finish: ${r.stderr.trim()}`);
      done();
    }
    return { path: target.inSandbox, deleted: true };
  }

  /** Creates a directory and any missing parents; `path` is the body's (errors name `body.path`). */
  async mkdir(rec: SandboxRecord, actor: Actor, path: string): Promise<{ path: string }> {
    const target = resolveWorkspacePath(path, 'body.path');
    await this.deps.workspaces.mkdirs(rec.id, target.parts);
    this.audit(actor, rec, 'files.mkdir', { path });
    return { path: target.inSandbox };
  }

  /** Moves or renames within the workspace; the paths are the body's (errors name `body.from`, `body.to`). */
  async move(rec: SandboxRecord, actor: Actor, m: { from: string; to: string; overwrite?: boolean | undefined }): Promise<{ from: string; to: string }> {
    const from = resolveWorkspacePath(m.from, 'body.from');
    const to = resolveWorkspacePath(m.to, 'body.to');
    if (from.parts.length <= APP_DIR_IN_HOME.length && APP_DIR_IN_HOME.join('/').startsWith(from.parts.join('/'))) {
      throw new AppError('invalid_request', `body.from: ${from.inSandbox} holds the app directory, which stays where it is`, { field: 'body.from' });
    }
    await this.deps.workspaces.move(rec.id, from.parts, to.parts, m.overwrite ?? false);
    this.audit(actor, rec, 'files.move', { from: m.from, to: m.to });
    return { from: from.inSandbox, to: to.inSandbox };
  }

  /**
   * A directory as a tar stream (links, FIFOs and devices left out). It holds a session slot of its sandbox
   * and tenant until `close()` (its listing costs memory, its reads time): many at once are refused 429.
   */
  async download(rec: SandboxRecord, path: string | undefined): Promise<ArchiveDownload> {
    const target = resolveWorkspacePath(path ?? '.');
    const top = await this.deps.workspaces.stat(rec.id, target.parts);
    if (top?.type !== 'dir') throw new AppError(top ? 'invalid_request' : 'not_found', `path: '${path ?? '.'}' is ${top ? 'not a directory' : 'missing'}`, { field: 'path' });
    const release = this.deps.sessions.take(rec, 'archive');
    try {
      const chunks = await this.deps.workspaces.archive(rec.id, target.parts);
      return { name: target.parts.at(-1) ?? 'home', chunks, close: release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Extracts an uploaded tar (the caller caps its size) into a directory; every entry passes the same path
   * rules as a single write, and links and devices in it are skipped. It holds a session slot like a download.
   */
  async upload(rec: SandboxRecord, actor: Actor, u: { path: string | undefined; body: AsyncIterable<Buffer>; abandoned: () => boolean }): Promise<{ path: string; files: number; dirs: number; skipped: number }> {
    const target = resolveWorkspacePath(u.path ?? '.');
    const release = this.deps.sessions.take(rec, 'archive');
    try {
      const upload = await this.deps.workspaces.receiveArchive(rec.id, target.parts, u.body);
      try {
        const { files, dirs, skipped } = upload;
        // Recorded before the first write: a disk that refuses the row refuses the upload while nothing has changed.
        this.audit(actor, rec, 'files.archive_put', { path: u.path ?? '.', files, dirs, skipped });
        await upload.unpack(u.abandoned);
        return { path: target.inSandbox, files, dirs, skipped };
      } finally {
        await upload.close();
      }
    } finally {
      release();
    }
  }

  private audit(actor: Actor, rec: SandboxRecord, action: string, detail: Record<string, unknown>): void {
    this.deps.audit({ actor: actor.name, action, sandboxId: rec.id, requestId: actor.requestId, outcome: 'ok', detail });
  }
}
