import { AppError } from '../errors.ts';
import { parseRef } from '../ids.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { RequestContext } from './route.ts';

/** Resolves `{id}` (a ULID in any case, or a name) to a sandbox the caller may see; others' sandboxes are 404. */
export function findSandbox(ctx: RequestContext, raw = ctx.params.id ?? ''): SandboxRecord {
  const ref = parseRef(raw);
  if (!ref) throw new AppError('invalid_request', `id: '${raw.slice(0, 80)}' is neither a sandbox id (ULID) nor a name ([a-z0-9-]{1,63})`, { field: 'id' });
  const { sandboxes } = ctx.deps.store;
  const rec = 'id' in ref ? sandboxes.get(ref.id) : sandboxes.getByName(ref.name);
  if (!rec || (!ctx.caller.admin && rec.owner !== ctx.caller.name)) {
    throw new AppError('not_found', `sandbox '${raw.slice(0, 80)}' not found`);
  }
  return rec;
}

/** The lifecycle's view of who is acting. */
export function actorOf(ctx: RequestContext): { name: string; requestId: string } {
  return { name: ctx.caller.name, requestId: ctx.requestId };
}
