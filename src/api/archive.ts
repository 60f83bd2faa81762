import { readSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import { resolveWorkspacePath } from '../workspaces/paths.ts';
import { pad, scanTar, TAR_END, tarHeader, type TarMember } from '../workspaces/tar.ts';
import { ArchiveQuery, type ArchiveQuery as ArchiveQ } from './files-schemas.ts';
import { cappedBody, treeOf } from './files.ts';
import { spool } from '../workspaces/spool.ts';
import { findSandbox } from './lookup.ts';
import { countRefusal, sessionLimits } from './limits.ts';
import type { RequestContext, Route } from './route.ts';

const ARCHIVE_ENTRY_LIMIT = 100_000;

async function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  if (res.destroyed) throw new ClientGone();
  if (res.write(chunk)) return;
  // A client that stops reading holds its listing and buffers: past the deadline the download is cut, and a
  // client that hung up ends it at once.
  const drained = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => settle(false), DRAIN_TIMEOUT_MS);
    const settle = (ok: boolean) => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
  if (!drained) {
    res.destroy();
    throw new ClientGone();
  }
}

/** How long a download waits for a client that stopped reading. */
const DRAIN_TIMEOUT_MS = 30_000;

/** The client went away (or stopped reading) mid-transfer: nothing is left to answer. */
class ClientGone extends Error {}

/**
 * An archive transfer holds a session slot of its sandbox and tenant while it runs (they cost memory for
 * their listing or plan, and time on the files): many at once are refused with 429 like any other session.
 */
function admitTransfer(ctx: RequestContext, rec: ReturnType<typeof findSandbox>): () => void {
  try {
    return sessionLimits(ctx.deps).acquire(rec);
  } catch (err) {
    countRefusal(ctx.deps, err, 'archive');
    throw err;
  }
}

/** GET: streams a tar of a directory. Links are not followed (they are left out), nor are FIFOs and devices. */
async function getArchive(ctx: RequestContext<unknown, ArchiveQ>): Promise<void> {
  const rec = findSandbox(ctx);
  const tree = treeOf(ctx, rec);
  const target = resolveWorkspacePath(ctx.query.path ?? '.');
  const top = await tree.stat(target.parts);
  if (top?.type !== 'dir') throw new AppError(top ? 'invalid_request' : 'not_found', `path: '${ctx.query.path ?? '.'}' is ${top ? 'not a directory' : 'missing'}`, { field: 'path' });
  const release = admitTransfer(ctx, rec);
  try {
    await sendArchive(ctx, tree, target);
  } catch (err) {
    if (!(err instanceof ClientGone) && !ctx.res.headersSent) throw err;
    ctx.res.destroy();
  } finally {
    release();
  }
}

/** Writes the tar of one directory to the response, entry by entry. */
async function sendArchive(ctx: RequestContext<unknown, ArchiveQ>, tree: ReturnType<typeof treeOf>, target: ReturnType<typeof resolveWorkspacePath>): Promise<void> {
  const { entries, truncated } = await tree.list(target.parts, true, ARCHIVE_ENTRY_LIMIT);
  if (truncated) throw new AppError('too_large', `the directory holds more than ${ARCHIVE_ENTRY_LIMIT} entries; archive a subdirectory`);
  const name = target.parts.at(-1) ?? 'home';
  ctx.res.writeHead(200, { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="${name.replace(/[^\w.-]/g, '_')}.tar"` });
  for (const e of entries) {
    const mtime = Date.parse(e.mtime);
    if (e.type === 'dir') {
      await write(ctx.res, tarHeader({ path: e.path, type: 'dir', size: 0, mode: 0o755, mtime }));
    } else if (e.type === 'file') {
      // The sandbox may change the file while we read it: the header's size is what we send, exactly.
      const { handle, size } = await tree.openForRead([...target.parts, ...e.path.split('/')]).catch(() => ({ handle: undefined, size: 0 }));
      if (!handle) continue;
      try {
        await write(ctx.res, tarHeader({ path: e.path, type: 'file', size, mode: 0o644, mtime }));
        let sent = 0;
        const buf = Buffer.alloc(64 * 1024);
        while (sent < size) {
          const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - sent), sent);
          if (bytesRead === 0) break;
          await write(ctx.res, Buffer.from(buf.subarray(0, bytesRead)));
          sent += bytesRead;
        }
        if (sent < size) await write(ctx.res, Buffer.alloc(size - sent));
        await write(ctx.res, Buffer.alloc(pad(size)));
      } finally {
        await handle.close();
      }
    }
  }
  ctx.res.end(TAR_END);
}

/** Most headers one uploaded archive may hold; each costs a checksum on this thread and a row of the plan. */
const ARCHIVE_UPLOAD_ENTRIES = 50_000;
const WINDOW = 1 << 20;

/** Reads of a spool file through a 1 MiB window, so walking its headers costs one read per MiB, not per 512 bytes. */
function windowedReader(fd: number): (position: number, length: number) => Buffer {
  let start = 0;
  let window = Buffer.alloc(0);
  return (position, length) => {
    if (position < start || position + length > start + window.length) {
      const buf = Buffer.alloc(Math.max(WINDOW, length));
      window = buf.subarray(0, readSync(fd, buf, 0, buf.length, position));
      start = position;
    }
    return window.subarray(position - start, position - start + length);
  };
}

/** Bounds on an uploaded archive's paths: a single write's limits, plus depth and total work. */
const ENTRY_PATH_MAX = 4096;
const NAME_MAX = 255;
const DEPTH_MAX = 128;
const COMPONENTS_MAX = 500_000;
const UNPACK_DEADLINE_MS = 600_000;

/** Checks every member's path and plans where it lands, so a bad archive is refused before anything is written. */
function planArchive(members: TarMember[], base: string[]): { e: TarMember; parts: string[] }[] {
  const refuse = (rel: string, why: string) => new AppError('invalid_request', `body: the archive entry '${rel.slice(0, 200)}' ${why}`);
  const planned: { e: TarMember; parts: string[] }[] = [];
  let components = 0;
  for (const e of members) {
    const rel = e.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (!rel || rel === '.') continue;
    if (Buffer.byteLength(rel) > ENTRY_PATH_MAX) throw refuse(rel, `has a path longer than ${ENTRY_PATH_MAX} bytes`);
    if (rel.startsWith('/') || rel.includes('\0')) throw refuse(rel, 'would land outside the target directory');
    const parts = rel.split('/').filter((p) => p && p !== '.');
    if (parts.includes('..')) throw refuse(rel, 'would land outside the target directory');
    if (parts.some((p) => Buffer.byteLength(p) > NAME_MAX)) throw refuse(rel, `has a name longer than ${NAME_MAX} bytes`);
    if (parts.length > DEPTH_MAX) throw refuse(rel, `is more than ${DEPTH_MAX} directories deep`);
    components += base.length + parts.length;
    if (components > COMPONENTS_MAX) throw new AppError('too_large', `body: the archive's paths add up to more than ${COMPONENTS_MAX} path components; upload it in parts`);
    planned.push({ e, parts: [...base, ...parts] });
  }
  return planned;
}

/** PUT: extracts a tar into a directory; every entry passes the same path rules as a single write. */
async function putArchive(ctx: RequestContext<unknown, ArchiveQ>) {
  const rec = findSandbox(ctx);
  const tree = treeOf(ctx, rec);
  const target = resolveWorkspacePath(ctx.query.path ?? '.');
  const release = admitTransfer(ctx, rec);
  try {
    // The upload goes to a spool file, not memory: it is checked whole before anything is written, then unpacked from there.
    const upload = await spool(ctx.deps.config.dataDir, cappedBody(ctx.req, ctx.deps.config.fileWriteMaxBytes));
    try {
      let members;
      try {
        members = scanTar(windowedReader(upload.handle.fd), upload.size, ARCHIVE_UPLOAD_ENTRIES);
      } catch (err) {
        throw new AppError('invalid_request', `body: not a readable tar archive (${(err as Error).message})`);
      }
      const planned = planArchive(members, target.parts);
      const counts = { files: planned.filter((p) => p.e.type === 'file').length, dirs: planned.filter((p) => p.e.type === 'dir').length };
      const skipped = planned.length - counts.files - counts.dirs; // links, devices, FIFOs: never created from an upload
      // Recorded before the first write: a disk that refuses the row refuses the upload while nothing has changed.
      ctx.deps.store.audit.record({ actor: ctx.caller.name, action: 'files.archive_put', sandboxId: rec.id, requestId: ctx.requestId, outcome: 'ok', detail: { path: ctx.query.path ?? '.', ...counts, skipped } });
      const deadline = Date.now() + UNPACK_DEADLINE_MS;
      await tree.mkdirs(target.parts);
      for (const { e, parts } of planned) {
        // Unpacking is work the client asked for: it stops when the client has gone or the deadline passes.
        if (ctx.req.socket.destroyed) throw new ClientGone();
        if (Date.now() > deadline) throw new AppError('too_large', `unpacking took longer than ${UNPACK_DEADLINE_MS / 1000} s and was stopped part-way; upload the archive in smaller parts`);
        if (e.type === 'dir') await tree.mkdirs(parts);
        else if (e.type === 'file') {
          const data = e.size ? upload.handle.createReadStream({ start: e.offset, end: e.offset + e.size - 1, autoClose: false }) : Buffer.alloc(0);
          await tree.writeAtomic(parts, data, (e.mode & 0o777) | 0o600);
        }
      }
      return { status: 200, body: { path: target.inSandbox, ...counts, skipped } };
    } finally {
      await upload.close();
    }
  } finally {
    release();
  }
}

const tags = ['files'];

/** Directory archives down and up. */
export const archiveRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/sandboxes/{id}/archive', operationId: 'downloadArchive', tags, query: ArchiveQuery,
    summary: 'Download a directory as a tar stream (links are left out)',
    response: { status: 200, description: 'application/x-tar' },
    handler: getArchive,
  },
  {
    method: 'PUT', path: '/v1/sandboxes/{id}/archive', operationId: 'uploadArchive', tags, query: ArchiveQuery, rawBody: true,
    summary: 'Upload a tar and extract it into a directory (links and devices in it are skipped)',
    response: { status: 200, schema: Type.Object({ path: Type.String(), files: Type.Integer(), dirs: Type.Integer(), skipped: Type.Integer() }), description: 'Extracted.' },
    handler: putArchive,
  },
];
