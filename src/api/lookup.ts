import { AppError } from '../errors.ts';
import { parseRef } from '../ids.ts';
import type { Actor } from '../sandboxes/lifecycle.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { RequestContext } from './route.ts';

const OWNER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Resolves `{id}` to a sandbox the caller may see. Forms: a ULID (any case); a name, looked up among the
 * caller's own sandboxes; `owner/name` (the `/` sent as %2F), for an admin addressing another tenant.
 * Whatever the caller may not see answers exactly as what does not exist: the same 404, the same message.
 */
export function findSandbox(ctx: RequestContext, raw = ctx.params.id ?? ''): SandboxRecord {
  const slash = raw.indexOf('/');
  const ownerPart = slash >= 0 ? raw.slice(0, slash) : undefined;
  const ref = parseRef(slash >= 0 ? raw.slice(slash + 1) : raw);
  if (!ref || (ownerPart !== undefined && (!OWNER_RE.test(ownerPart) || 'id' in ref))) {
    throw new AppError('invalid_request', `id: '${raw.slice(0, 80)}' is neither a sandbox id (ULID), a name ([a-z0-9-]{1,63}) nor owner/name (the / sent as %2F)`, { field: 'id' });
  }
  const rec = 'id' in ref ? ctx.deps.sandboxes.byId(ref.id) : byName(ctx, ref.name, ownerPart);
  if (!rec || (!ctx.caller.admin && rec.owner !== ctx.caller.name)) {
    throw new AppError('not_found', `sandbox '${raw.slice(0, 80)}' not found`);
  }
  return rec;
}

/**
 * A name within one tenant: `owner` when given, else the caller's own, never anyone else's: a tenant could
 * otherwise squat a name an admin uses and catch the admin's execs and writes the moment the admin's own
 * sandbox of that name does not exist. An admin names others' sandboxes as owner%2Fname.
 */
function byName(ctx: RequestContext, name: string, owner: string | undefined): SandboxRecord | undefined {
  return ctx.deps.sandboxes.byName(name, owner ?? ctx.caller.name);
}

/** The lifecycle's view of who is acting. */
export function actorOf(ctx: RequestContext): Actor {
  return { name: ctx.caller.name, requestId: ctx.requestId, admin: ctx.caller.admin };
}
