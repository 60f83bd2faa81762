import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import { APP_DIR_IN_HOME, resolveWorkspacePath } from '../workspaces/paths.ts';
import { ConfinedTree } from '../workspaces/safe-fs.ts';
import { execFailure } from './exec-failure.ts';
import {
  DeleteQuery, FilesQuery, Listing, Mkdir, Move, WriteFile, WriteQuery, Written,
  type DeleteQuery as DeleteQ, type FilesQuery as FilesQ, type Mkdir as MkdirBody, type Move as MoveBody, type WriteQuery as WriteQ,
} from './files-schemas.ts';
import { parseJson } from './http.ts';
import { takeSlot } from './limits.ts';
import { findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';
import { validate } from './validate.ts';

const LIST_LIMIT = 10_000;

/** A sandbox's home as a confined tree; works whether or not its container runs. */
export function treeOf(ctx: RequestContext, rec: SandboxRecord): ConfinedTree {
  return new ConfinedTree(ctx.deps.workspaces.dir(rec.id), '~');
}

/** The request body as it streams in, refused with 413 as soon as it passes `max` (or declares more); `why` says what to do instead. */
export async function* cappedBody(req: IncomingMessage, max: number, why = `the limit is ${max} bytes (SANDBOXD_FILE_WRITE_MAX_BYTES)`): AsyncGenerator<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new AppError('too_large', `the upload is ${declared} bytes; ${why}`);
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new AppError('too_large', `the upload is larger than ${max} bytes; ${why}`);
    yield chunk;
  }
}

/** Reads a whole capped body into memory (small bodies only: JSON). */
async function readCapped(req: IncomingMessage, max: number, why: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of cappedBody(req, max, why)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function audit(ctx: RequestContext, rec: SandboxRecord, action: string, detail: Record<string, unknown>): void {
  ctx.deps.store.audit.record({ actor: ctx.caller.name, action, sandboxId: rec.id, requestId: ctx.requestId, outcome: 'ok', detail });
}

/** GET: a directory's listing, or a file's bytes (raw, or JSON with `encoding`), or a range of them. */
async function getFiles(ctx: RequestContext<unknown, FilesQ>): Promise<{ status: number; body: unknown } | void> {
  const rec = findSandbox(ctx);
  const q = ctx.query;
  const target = resolveWorkspacePath(q.path ?? '.');
  const tree = treeOf(ctx, rec);
  const entry = await tree.stat(target.parts);
  if (!entry) throw new AppError('not_found', `path: '${q.path ?? '.'}' does not exist`, { field: 'path' });
  if (entry.type === 'dir') {
    const { entries, truncated } = await tree.list(target.parts, q.recursive ?? false, LIST_LIMIT);
    return { status: 200, body: { path: target.inSandbox, type: 'dir', entries, truncated } };
  }
  const cap = ctx.deps.config.fileReadMaxBytes;
  const { handle, size } = await tree.openForRead(target.parts);
  try {
    const ranged = q.offset !== undefined || q.length !== undefined;
    const start = Math.min(q.offset ?? 0, size);
    const length = Math.min(q.length ?? size - start, size - start);
    if (length > cap) {
      throw new AppError('too_large', ranged
        ? `length ${length} is above the read limit of ${cap} bytes; ask for a smaller range`
        : `the file is ${size} bytes, above the read limit of ${cap}; read it in ranges with offset and length`);
    }
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, start);
    const data = buf.subarray(0, bytesRead);
    if (q.encoding) {
      if (q.encoding === 'utf8' && !isUtf8(data)) throw new AppError('invalid_request', 'encoding: the file is not UTF-8 text; ask for encoding=base64', { field: 'encoding' });
      return { status: 200, body: { path: target.inSandbox, content: data.toString(q.encoding), encoding: q.encoding, size, offset: start } };
    }
    ctx.res.writeHead(200, {
      'content-type': 'application/octet-stream', 'content-length': data.length, 'x-file-size': String(size),
      ...(ranged ? { 'content-range': `bytes ${start}-${start + data.length - 1}/${size}` } : {}),
    });
    ctx.res.end(data);
  } finally {
    await handle.close();
  }
}

/** PUT: `?path=` with the raw bytes as the body, or the README's JSON `{path, content, encoding?, append?}`. */
async function putFiles(ctx: RequestContext<unknown, WriteQ>) {
  const rec = findSandbox(ctx);
  const cap = ctx.deps.config.fileWriteMaxBytes;
  const tree = treeOf(ctx, rec);
  let path: string;
  let append: boolean;
  let bytes: number;
  if (ctx.query.path !== undefined) {
    path = ctx.query.path;
    append = ctx.query.append ?? false;
    const target = resolveWorkspacePath(path);
    bytes = append ? await tree.append(target.parts, cappedBody(ctx.req, cap)) : await tree.writeAtomic(target.parts, cappedBody(ctx.req, cap));
  } else {
    // A JSON body is held in memory whole (and decoded once more), so it has a limit of its own: large files
    // stream to disk as raw bytes instead.
    const jsonCap = ctx.deps.config.fileJsonMaxBytes;
    const raw = await readCapped(ctx.req, jsonCap, `a JSON file write is limited to ${jsonCap} bytes (SANDBOXD_FILE_JSON_MAX_BYTES); send a larger file as raw bytes with PUT ${ctx.req.url?.split('?')[0] ?? '/v1/sandboxes/{id}/files'}?path=<path>, which streams to disk (up to ${cap} bytes)`);
    const body = validate<WriteFile>(WriteFile, parseJson(raw, false), 'body');
    const content = Buffer.from(body.content, body.encoding ?? 'utf8');
    if (content.length > cap) throw new AppError('too_large', `the content is ${content.length} bytes; the limit is ${cap}`);
    path = body.path;
    append = body.append ?? false;
    const target = resolveWorkspacePath(path, 'body.path');
    bytes = append ? await tree.append(target.parts, content) : await tree.writeAtomic(target.parts, content);
  }
  audit(ctx, rec, append ? 'files.append' : 'files.write', { path, bytes });
  return { status: 200, body: { path: resolveWorkspacePath(path).inSandbox, bytes, appended: append } };
}

/** DELETE: a file, a link, an empty directory, or (recursive) a whole directory. */
async function deleteFiles(ctx: RequestContext<unknown, DeleteQ>) {
  const rec = findSandbox(ctx);
  const target = resolveWorkspacePath(ctx.query.path);
  const app = APP_DIR_IN_HOME.join('/');
  if (target.parts.length === 0 || target.parts.join('/') === app || app.startsWith(`${target.parts.join('/')}/`)) {
    throw new AppError('invalid_request', `path: ${target.inSandbox} holds the app directory, which always exists; delete what is inside it instead`, { field: 'path' });
  }
  const tree = treeOf(ctx, rec);
  const entry = await tree.stat(target.parts);
  if (!entry) throw new AppError('not_found', `path: '${ctx.query.path}' does not exist`, { field: 'path' });
  const recursive = ctx.query.recursive ?? false;
  const done = () => audit(ctx, rec, 'files.delete', { path: ctx.query.path, recursive });
  if (entry.type !== 'dir' || !recursive) {
    // One unlink or rmdir relative to the parent's descriptor: atomic, safe whether or not the sandbox runs.
    // Never recursive here: a running sandbox that swapped the file for a directory since the stat would
    // otherwise get a host-side walk outside its lifecycle lock (a non-empty directory answers 409).
    await tree.remove(target.parts, false);
    done();
    return { status: 200, body: { path: target.inSandbox, deleted: true } };
  }
  // A stopped sandbox's tree is removed host-side by descriptor, under its lifecycle lock: a wake (one
  // preview request) waits until the walk is over instead of starting an app that swaps directories under it.
  // The walk takes a session slot too: a tenant's concurrent deletes of huge trees are capped (429) like
  // its execs, so they cannot hold the process's descriptors and I/O threads.
  const releaseWalk = takeSlot(ctx.deps, rec, 'files_delete');
  const host = await ctx.deps.lifecycle.whileStopped(rec.id, async () => {
    await tree.remove(target.parts, true);
    done();
  }).finally(releaseWalk);
  if (!host.ran) {
    if (!(await ctx.deps.runtime.inspect(rec.id))?.running) {
      throw new AppError('conflict', `the sandbox is ${host.status}; retry the delete in a moment`, { status: host.status });
    }
    // Inside the running container rm can only ever reach the sandbox's own files.
    // It holds an exec slot up to 2 minutes: it takes a session slot, so a flood of deletes is refused 429.
    const release = takeSlot(ctx.deps, rec, 'files_delete', { liveOnly: true });
    const r = await Promise.resolve()
      .then(() => ctx.deps.pool.exec({ sandboxId: rec.id, spec: { cmd: ['rm', '-rf', '--', target.inSandbox], cwd: '/home/sandbox' }, capBytes: 65536, timeoutMs: 120_000 }).result)
      .catch((err) => { throw execFailure(err); })
      .finally(release);
    if (r.exit_code !== 0) throw new AppError('sandbox_unavailable', `the delete did not finish: ${r.stderr.trim()}`);
    done();
  }
  return { status: 200, body: { path: target.inSandbox, deleted: true } };
}

const tags = ['files'];

/** The files API: one root for every operation, no link followed, usable while the sandbox sleeps. */
export const fileRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/sandboxes/{id}/files', operationId: 'readFiles', tags, query: FilesQuery,
    summary: 'List a directory, or read a file (raw bytes; JSON with ?encoding=; a range with offset/length)',
    response: { status: 200, schema: Listing, description: 'A directory listing (files answer with their bytes).' },
    handler: getFiles,
  },
  {
    method: 'PUT', path: '/v1/sandboxes/{id}/files', operationId: 'writeFile', tags, query: WriteQuery, rawBody: true,
    body: WriteFile,
    summary: 'Write a file atomically: JSON {path, content, encoding?, append?}, or raw bytes with ?path=',
    response: { status: 200, schema: Written, description: 'Written.' },
    handler: putFiles,
  },
  {
    method: 'DELETE', path: '/v1/sandboxes/{id}/files', operationId: 'deleteFile', tags, query: DeleteQuery,
    summary: 'Delete a file or link, an empty directory, or with ?recursive=true a whole directory',
    response: { status: 200, schema: Type.Object({ path: Type.String(), deleted: Type.Boolean() }), description: 'Deleted.' },
    handler: deleteFiles,
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/files/mkdir', operationId: 'makeDirectory', tags, query: NoQuery, body: Mkdir,
    summary: 'Create a directory and any missing parents',
    response: { status: 200, schema: Type.Object({ path: Type.String() }), description: 'Created (or already there).' },
    handler: async (ctx: RequestContext<MkdirBody>) => {
      const rec = findSandbox(ctx);
      const target = resolveWorkspacePath(ctx.body.path, 'body.path');
      await treeOf(ctx, rec).mkdirs(target.parts);
      audit(ctx, rec, 'files.mkdir', { path: ctx.body.path });
      return { status: 200, body: { path: target.inSandbox } };
    },
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/files/move', operationId: 'moveFile', tags, query: NoQuery, body: Move,
    summary: 'Move or rename a file or directory (refuses to replace an existing target unless overwrite)',
    response: { status: 200, schema: Type.Object({ from: Type.String(), to: Type.String() }), description: 'Moved.' },
    handler: async (ctx: RequestContext<MoveBody>) => {
      const rec = findSandbox(ctx);
      const from = resolveWorkspacePath(ctx.body.from, 'body.from');
      const to = resolveWorkspacePath(ctx.body.to, 'body.to');
      if (from.parts.length <= APP_DIR_IN_HOME.length && APP_DIR_IN_HOME.join('/').startsWith(from.parts.join('/'))) {
        throw new AppError('invalid_request', `body.from: ${from.inSandbox} holds the app directory, which stays where it is`, { field: 'body.from' });
      }
      await treeOf(ctx, rec).move(from.parts, to.parts, ctx.body.overwrite ?? false);
      audit(ctx, rec, 'files.move', { from: ctx.body.from, to: ctx.body.to });
      return { status: 200, body: { from: from.inSandbox, to: to.inSandbox } };
    },
  },
];
