import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { ArchiveQuery, type ArchiveQuery as ArchiveQ } from './files-schemas.ts';
import { cappedBody } from './files.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';

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

/** Writes a stream to the response as the client drains it; the last chunk goes with `end()`, which waits for nobody. */
async function stream(res: ServerResponse, chunks: AsyncIterable<Buffer>): Promise<void> {
  let last: Buffer | undefined;
  for await (const chunk of chunks) {
    if (last) await write(res, last);
    last = chunk;
  }
  res.end(last);
}

/** GET: streams a tar of a directory. Links are not followed (they are left out), nor are FIFOs and devices. */
async function getArchive(ctx: RequestContext<unknown, ArchiveQ>): Promise<void> {
  const archive = await ctx.deps.files.download(findSandbox(ctx), ctx.query.path);
  try {
    ctx.res.writeHead(200, { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="${archive.name.replace(/[^\w.-]/g, '_')}.tar"` });
    await stream(ctx.res, archive.chunks);
  } catch (err) {
    if (!(err instanceof ClientGone) && !ctx.res.headersSent) throw err;
    ctx.res.destroy();
  } finally {
    archive.close();
  }
}

/** PUT: extracts a tar into a directory; the upload streams to a spool file, checked whole before anything is written. */
async function putArchive(ctx: RequestContext<unknown, ArchiveQ>) {
  const rec = findSandbox(ctx);
  const body = cappedBody(ctx.req, ctx.deps.config.fileWriteMaxBytes);
  const extracted = await ctx.deps.files.upload(rec, actorOf(ctx), { path: ctx.query.path, body, abandoned: () => ctx.req.socket.destroyed });
  return { status: 200, body: extracted };
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
