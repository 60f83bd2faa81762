import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import {
  DeleteQuery, FilesQuery, Listing, Mkdir, Move, WriteFile, WriteQuery, Written,
  type DeleteQuery as DeleteQ, type FilesQuery as FilesQ, type Mkdir as MkdirBody, type Move as MoveBody, type WriteQuery as WriteQ,
} from './files-schemas.ts';
import { parseJson } from './http.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';
import { validate } from './validate.ts';

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

/** GET: a directory's listing, or a file's bytes (raw, or JSON with `encoding`), or a range of them. */
async function getFiles(ctx: RequestContext<unknown, FilesQ>): Promise<{ status: number; body: unknown } | void> {
  const q = ctx.query;
  const found = await ctx.deps.files.read(findSandbox(ctx), q);
  if (found.type === 'dir') return { status: 200, body: found };
  const { data, size, offset } = found;
  if (q.encoding) {
    if (q.encoding === 'utf8' && !isUtf8(data)) throw new AppError('invalid_request', 'encoding: the file is not UTF-8 text; ask for encoding=base64', { field: 'encoding' });
    return { status: 200, body: { path: found.path, content: data.toString(q.encoding), encoding: q.encoding, size, offset } };
  }
  const ranged = q.offset !== undefined || q.length !== undefined;
  ctx.res.writeHead(200, {
    'content-type': 'application/octet-stream', 'content-length': data.length, 'x-file-size': String(size),
    ...(ranged ? { 'content-range': `bytes ${offset}-${offset + data.length - 1}/${size}` } : {}),
  });
  ctx.res.end(data);
}

/** PUT: `?path=` with the raw bytes as the body, or the README's JSON `{path, content, encoding?, append?}`. */
async function putFiles(ctx: RequestContext<unknown, WriteQ>) {
  const rec = findSandbox(ctx);
  const cap = ctx.deps.config.fileWriteMaxBytes;
  if (ctx.query.path !== undefined) {
    const written = await ctx.deps.files.write(rec, actorOf(ctx), { path: ctx.query.path, source: 'query', data: cappedBody(ctx.req, cap), append: ctx.query.append ?? false });
    return { status: 200, body: written };
  }
  // A JSON body is held in memory whole (and decoded once more), so it has a limit of its own: large files
  // stream to disk as raw bytes instead.
  const jsonCap = ctx.deps.config.fileJsonMaxBytes;
  const raw = await readCapped(ctx.req, jsonCap, `a JSON file write is limited to ${jsonCap} bytes (SANDBOXD_FILE_JSON_MAX_BYTES); send a larger file as raw bytes with PUT ${ctx.req.url?.split('?')[0] ?? '/v1/sandboxes/{id}/files'}?path=<path>, which streams to disk (up to ${cap} bytes)`);
  const body = validate<WriteFile>(WriteFile, parseJson(raw, false), 'body');
  const content = Buffer.from(body.content, body.encoding ?? 'utf8');
  if (content.length > cap) throw new AppError('too_large', `the content is ${content.length} bytes; the limit is ${cap}`);
  const written = await ctx.deps.files.write(rec, actorOf(ctx), { path: body.path, source: 'body', data: content, append: body.append ?? false });
  return { status: 200, body: written };
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
    handler: async (ctx: RequestContext<unknown, DeleteQ>) => ({ status: 200, body: await ctx.deps.files.remove(findSandbox(ctx), actorOf(ctx), ctx.query) }),
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/files/mkdir', operationId: 'makeDirectory', tags, query: NoQuery, body: Mkdir,
    summary: 'Create a directory and any missing parents',
    response: { status: 200, schema: Type.Object({ path: Type.String() }), description: 'Created (or already there).' },
    handler: async (ctx: RequestContext<MkdirBody>) => ({ status: 200, body: await ctx.deps.files.mkdir(findSandbox(ctx), actorOf(ctx), ctx.body.path) }),
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/files/move', operationId: 'moveFile', tags, query: NoQuery, body: Move,
    summary: 'Move or rename a file or directory (refuses to replace an existing target unless overwrite)',
    response: { status: 200, schema: Type.Object({ from: Type.String(), to: Type.String() }), description: 'Moved.' },
    handler: async (ctx: RequestContext<MoveBody>) => ({ status: 200, body: await ctx.deps.files.move(findSandbox(ctx), actorOf(ctx), ctx.body) }),
  },
];
