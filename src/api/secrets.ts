import { Type, type Static } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import type { Route } from './route.ts';
import { NoQuery } from './schemas.ts';

/** Environment-variable-like names: what an agent or a provider key is usually called (ANTHROPIC_API_KEY). */
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** A secret is a key or a token, not a file. */
const MAX_VALUE_CHARS = 16_384;

const PutSecret = Type.Object({
  value: Type.String({ minLength: 1, maxLength: MAX_VALUE_CHARS, description: 'The secret; never returned by any route.' }),
}, { additionalProperties: false });
type PutSecret = Static<typeof PutSecret>;

const ScopeQuery = Type.Object({
  scope: Type.Optional(Type.Union([Type.Literal('tenant'), Type.Literal('global')], { description: "tenant (default): the caller's own; global (admin tokens only): every tenant's sandboxes may use it." })),
}, { additionalProperties: false });
type ScopeQuery = Static<typeof ScopeQuery>;

const SecretView = Type.Object({
  name: Type.String(),
  scope: Type.Union([Type.Literal('tenant'), Type.Literal('global')]),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

/** The secret name in the path, checked. */
function nameOf(params: Record<string, string>): string {
  const raw = params.name ?? '';
  if (!NAME_RE.test(raw)) throw new AppError('invalid_request', `name: '${raw.slice(0, 80)}' is not a secret name; use 1-64 letters, digits and _, not starting with a digit (such as ANTHROPIC_API_KEY)`, { field: 'name' });
  return raw;
}

/** The scope a request names; the caller's own by default. */
const scopeOf = (query: unknown) => (query as ScopeQuery).scope ?? 'tenant';

const tags = ['secrets'];

/** Write-only secrets: set, list by name, delete. */
export const secretRoutes: Route[] = [
  {
    method: 'PUT', path: '/v1/secrets/{name}', operationId: 'putSecret', tags,
    summary: 'Set a secret (write-only: its value is sealed at rest and never returned)',
    body: PutSecret, query: ScopeQuery, response: { status: 200, schema: SecretView, description: 'The secret, without its value.' },
    handler: (ctx) => {
      const body = ctx.body as PutSecret;
      // A lone surrogate would be stored as U+FFFD: the daemon would later use another value than the one set.
      if (!body.value.isWellFormed()) throw new AppError('invalid_request', 'body.value: is not well-formed Unicode (it has a lone surrogate); send the key as it is', { field: 'body.value' });
      return { status: 200, body: ctx.deps.secrets.put(ctx.caller, nameOf(ctx.params), body.value, scopeOf(ctx.query), ctx.requestId) };
    },
  },
  {
    method: 'GET', path: '/v1/secrets', operationId: 'listSecrets', tags,
    summary: "The caller's secrets and the global ones: names and times, never values",
    query: NoQuery, response: { status: 200, schema: Type.Object({ data: Type.Array(SecretView) }), description: 'Secrets by scope, then name.' },
    handler: (ctx) => ({ status: 200, body: { data: ctx.deps.secrets.list(ctx.caller) } }),
  },
  {
    method: 'DELETE', path: '/v1/secrets/{name}', operationId: 'deleteSecret', tags,
    summary: 'Delete a secret',
    query: ScopeQuery, response: { status: 200, schema: Type.Object({ deleted: Type.Literal(true) }), description: 'Deleted.' },
    handler: (ctx) => {
      ctx.deps.secrets.delete(ctx.caller, nameOf(ctx.params), scopeOf(ctx.query), ctx.requestId);
      return { status: 200, body: { deleted: true } };
    },
  },
];
