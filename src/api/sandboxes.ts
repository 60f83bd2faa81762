import { AppError } from '../errors.ts';
import { isValidName, normaliseId } from '../ids.ts';
import type { CreateSandboxInput } from '../sandboxes/lifecycle.ts';
import type { ListFilter } from '../model/sandbox.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import {
  CreateSandbox, DeleteQuery, Keepalive, ListQuery, NoQuery, PreviewToken, PreviewTokenRequest, Sandbox, SandboxList,
} from './schemas.ts';
import { previewUrl, sandboxView } from './view.ts';

/** Checks what the schema cannot (id/name forms) and normalises the id; no side effects. */
export function createInput(body: CreateSandbox): CreateSandboxInput {
  const input: CreateSandboxInput = { ...body };
  if (body.id !== undefined) input.id = normaliseId(body.id)!;
  for (const port of Object.keys(body.port_visibility ?? {})) {
    if (!(body.ports ?? [3000]).includes(Number(port))) {
      throw new AppError('invalid_request', `body.port_visibility.${port}: ${port} is not one of the sandbox's ports`, { field: `body.port_visibility.${port}` });
    }
  }
  if (body.name !== undefined && !isValidName(body.name)) {
    throw new AppError('invalid_request', 'body.name: must not look like a sandbox id (a 26-character ULID)', { field: 'body.name' });
  }
  return input;
}

/** Creates a sandbox and answers its JSON; shared by POST /v1/sandboxes and the README's POST /sandbox. */
export async function createSandbox(ctx: RequestContext<CreateSandbox>) {
  const rec = await ctx.deps.lifecycle.create(createInput(ctx.body), actorOf(ctx));
  return { status: 201, body: sandboxView(ctx.deps.config, rec) };
}

/** The sandboxes a caller may list, newest first, with an opaque cursor for the next page. */
export function listSandboxes(ctx: RequestContext<unknown, ListQuery>) {
  const q = ctx.query;
  if (q.owner !== undefined && !ctx.caller.admin && q.owner !== ctx.caller.name) {
    throw new AppError('invalid_request', 'query.owner: only an admin token may list another tenant', { field: 'query.owner' });
  }
  let before: string | undefined;
  if (q.cursor !== undefined) {
    before = normaliseId(Buffer.from(q.cursor, 'base64url').toString('utf8'));
    if (!before) throw new AppError('invalid_request', 'query.cursor: not a cursor this API returned', { field: 'query.cursor' });
  }
  const limit = q.limit ?? 50;
  const external = Object.fromEntries((['user_id', 'project_id', 'workspace_id'] as const).filter((k) => q[k] !== undefined).map((k) => [k, q[k]!]));
  const filter: ListFilter = {
    limit: limit + 1,
    labels: (q.label ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
    external,
    ...(before !== undefined ? { before } : {}),
    ...(q.status !== undefined ? { status: q.status } : {}),
  };
  const owner = ctx.caller.admin ? q.owner : ctx.caller.name;
  if (owner !== undefined) filter.owner = owner;
  const rows = ctx.deps.sandboxes.list(filter);
  const page = rows.slice(0, limit);
  const next = rows.length > limit ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null;
  return { data: page.map((r) => sandboxView(ctx.deps.config, r)), next_cursor: next };
}

/** One sandbox with its live container state. */
export async function getSandbox(ctx: RequestContext) {
  const rec = findSandbox(ctx);
  const { live, disk } = await ctx.deps.sandboxes.live(rec);
  return { status: 200, body: sandboxView(ctx.deps.config, rec, live, disk) };
}

/** Destroys the container and keeps the workspace. */
export async function destroySandbox(ctx: RequestContext) {
  const rec = await ctx.deps.lifecycle.destroy(findSandbox(ctx).id, actorOf(ctx));
  return { status: 200, body: sandboxView(ctx.deps.config, rec) };
}

/** Destroys the container, the workspace and the record. */
export async function purgeSandbox(ctx: RequestContext) {
  const { id } = findSandbox(ctx);
  await ctx.deps.lifecycle.purge(id, actorOf(ctx));
  return { status: 200, body: { id, status: 'purged' as const } };
}

/** Postpones idle stop. */
export function keepaliveSandbox(ctx: RequestContext<Keepalive>) {
  const rec = ctx.deps.lifecycle.keepalive(findSandbox(ctx).id, ctx.body.seconds, actorOf(ctx));
  ctx.deps.activity.touch(rec.id, 'keepalive');
  return { status: 200, body: sandboxView(ctx.deps.config, rec) };
}

/** Stops now (reason api_stop). */
export async function stopSandbox(ctx: RequestContext) {
  const rec = await ctx.deps.lifecycle.stop(findSandbox(ctx).id, 'api_stop', actorOf(ctx));
  return { status: 200, body: sandboxView(ctx.deps.config, rec) };
}

const tags = ['sandboxes'];
const one = { status: 200, schema: Sandbox, description: 'The sandbox.' };

/** The canonical /v1 lifecycle routes. */
export const sandboxRoutes: Route[] = [
  {
    method: 'POST', path: '/v1/sandboxes', operationId: 'createSandbox', tags, summary: 'Create a sandbox and start it',
    body: CreateSandbox, bodyOptional: true, query: NoQuery,
    response: { status: 201, schema: Sandbox, description: 'Created and running.' },
    handler: createSandbox,
  },
  {
    method: 'GET', path: '/v1/sandboxes', operationId: 'listSandboxes', tags, summary: 'List sandboxes (newest first)',
    query: ListQuery, response: { status: 200, schema: SandboxList, description: 'One page.' },
    handler: (ctx) => ({ status: 200, body: listSandboxes(ctx) }),
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}', operationId: 'getSandbox', tags, summary: 'Get one sandbox with its live container state',
    query: NoQuery, response: one, handler: getSandbox,
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/start', operationId: 'startSandbox', tags,
    summary: 'Start a sandbox (recreates a missing container from its record)', query: NoQuery, response: one,
    handler: async (ctx) => {
      // The shared wake: a start during an idle stop waits for it instead of answering 409.
      const { record } = await ctx.deps.wakes.awake(findSandbox(ctx).id, 'wake:api', actorOf(ctx), { verify: true });
      return { status: 200, body: sandboxView(ctx.deps.config, record) };
    },
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/stop', operationId: 'stopSandbox', tags, summary: 'Stop a sandbox now (the workspace stays)',
    query: NoQuery, response: one, handler: stopSandbox,
  },
  {
    method: 'DELETE', path: '/v1/sandboxes/{id}', operationId: 'deleteSandbox', tags,
    summary: 'Destroy the container and keep the workspace; ?purge=true deletes the workspace and record too',
    query: DeleteQuery, response: { status: 200, schema: Sandbox, description: 'Destroyed (or, with purge, `{id, status: "purged"}`).' },
    handler: (ctx: RequestContext<unknown, DeleteQuery>) => (ctx.query.purge ? purgeSandbox(ctx) : destroySandbox(ctx)),
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/preview-tokens', operationId: 'mintPreviewToken', tags,
    summary: 'Mint a signed, expiring token that opens this sandbox\'s private previews', body: PreviewTokenRequest, bodyOptional: true,
    query: NoQuery, response: { status: 201, schema: PreviewToken, description: 'The token, and preview URLs that carry it.' },
    handler: (ctx: RequestContext<PreviewTokenRequest>) => {
      const rec = findSandbox(ctx);
      if (ctx.body.port !== undefined && !rec.ports.includes(ctx.body.port)) {
        throw new AppError('invalid_request', `body.port: ${ctx.body.port} is not one of the sandbox's ports (${rec.ports.join(', ')})`, { field: 'body.port' });
      }
      const { token, expiresAt, ports } = ctx.deps.previewGrants.grant(rec, ctx.body.ttl_s ?? 3600, ctx.body.port, actorOf(ctx));
      return {
        status: 201,
        body: { token, expires_at: new Date(expiresAt).toISOString(), urls: Object.fromEntries(ports.map((p) => [String(p), `${previewUrl(ctx.deps.config, rec.id, p)}/?token=${token}`])) },
      };
    },
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/keepalive', operationId: 'keepaliveSandbox', tags, summary: 'Postpone idle stop',
    body: Keepalive, bodyOptional: true, query: NoQuery, response: one, handler: keepaliveSandbox,
  },
];
