import { once } from 'node:events';
import { readSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import { resolveWorkspacePath } from '../workspaces/paths.ts';
import { pad, scanTar, TAR_END, tarHeader } from '../workspaces/tar.ts';
import { ArchiveQuery, type ArchiveQuery as ArchiveQ } from './files-schemas.ts';
import { cappedBody, treeOf } from './files.ts';
import { spool } from '../workspaces/spool.ts';
import { findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';

const ARCHIVE_ENTRY_LIMIT = 100_000;

async function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain');
}

/** GET: streams a tar of a directory. Links are not followed (they are left out), nor are FIFOs and devices. */
async function getArchive(ctx: RequestContext<unknown, ArchiveQ>): Promise<void> {
  const rec = findSandbox(ctx);
  const tree = treeOf(ctx, rec);
  const target = resolveWorkspacePath(ctx.query.path ?? '.');
  const top = await tree.stat(target.parts);
  if (top?.type !== 'dir') throw new AppError(top ? 'invalid_request' : 'not_found', `path: '${ctx.query.path ?? '.'}' is ${top ? 'not a directory' : 'missing'}`, { field: 'path' });
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

/** Most entries one uploaded archive may hold; each costs a header read and a row of the plan. */
const ARCHIVE_UPLOAD_ENTRIES = 100_000;

/** PUT: extracts a tar into a directory; every entry passes the same path rules as a single write. */
async function putArchive(ctx: RequestContext<unknown, ArchiveQ>) {
  const rec = findSandbox(ctx);
  const tree = treeOf(ctx, rec);
  const target = resolveWorkspacePath(ctx.query.path ?? '.');
  // The upload goes to a spool file, not memory: it is checked whole before anything is written, then unpacked from there.
  const upload = await spool(ctx.deps.config.dataDir, cappedBody(ctx.req, ctx.deps.config.fileWriteMaxBytes));
  let files = 0;
  let dirs = 0;
  let skipped = 0;
  try {
    const fd = upload.handle.fd;
    const read = (position: number, length: number) => {
      const buf = Buffer.alloc(length);
      return buf.subarray(0, readSync(fd, buf, 0, length, position));
    };
    let members;
    try {
      members = scanTar(read, upload.size, ARCHIVE_UPLOAD_ENTRIES);
    } catch (err) {
      throw new AppError('invalid_request', `body: not a readable tar archive (${(err as Error).message})`);
    }
    // Check every entry before writing any, so a bad archive changes nothing.
    const planned = members.map((e) => {
      const rel = e.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
      if (!rel || rel === '.') return undefined;
      if (rel.startsWith('/') || rel.split('/').includes('..') || rel.includes('\0')) {
        throw new AppError('invalid_request', `body: the archive entry '${rel.slice(0, 200)}' would land outside the target directory`);
      }
      return { e, parts: [...target.parts, ...rel.split('/').filter((p) => p && p !== '.')] };
    }).filter((x) => x !== undefined);
    await tree.mkdirs(target.parts);
    for (const { e, parts } of planned) {
      if (e.type === 'dir') (await tree.mkdirs(parts), dirs++);
      else if (e.type === 'file') {
        const data = e.size ? upload.handle.createReadStream({ start: e.offset, end: e.offset + e.size - 1, autoClose: false }) : Buffer.alloc(0);
        await tree.writeAtomic(parts, data, (e.mode & 0o777) | 0o600);
        files++;
      } else skipped++; // links, devices, FIFOs: never created from an upload
    }
  } finally {
    await upload.close();
  }
  ctx.deps.store.audit.record({ actor: ctx.caller.name, action: 'files.archive_put', sandboxId: rec.id, requestId: ctx.requestId, outcome: 'ok', detail: { path: ctx.query.path ?? '.', files, dirs, skipped } });
  return { status: 200, body: { path: target.inSandbox, files, dirs, skipped } };
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
