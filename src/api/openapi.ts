import type { TSchema } from '@sinclair/typebox';
import { ERRORS } from '../errors.ts';
import type { Route } from './route.ts';
import { ErrorBody, Sandbox } from './schemas.ts';

/** Plain JSON Schema (drops TypeBox's symbol keys and rewrites $ref to the components section). */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema), (key, value) => {
    if (key === '$ref' && typeof value === 'string' && !value.startsWith('#')) return `#/components/schemas/${value}`;
    return value;
  });
}

/** What each path parameter is, for the document. */
const PATH_PARAMS: Record<string, string> = {
  id: "Sandbox id (ULID, any case), or a name among the caller's own sandboxes, or (admin) owner/name with the / sent as %2F.",
  taskId: 'Task id (ULID, any case).',
  pid: 'Process id inside the sandbox, as listed by GET /v1/sandboxes/{id}/processes.',
  name: 'Secret name: 1-64 letters, digits and _, not starting with a digit.',
};

let cached: unknown;

/** The OpenAPI 3.1 document, generated from the same route table and schemas that validate requests. */
export function buildOpenApi(routes: Route[]): unknown {
  if (cached) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name, in: 'path', required: true, schema: { type: 'string' }, description: PATH_PARAMS[name!] ?? name,
    }));
    const queryProps = (r.query as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
    const query = Object.entries(queryProps).map(([name, schema]) => ({ name, in: 'query', required: false, schema: plain(schema) }));
    const errors = Object.fromEntries(
      [...new Set(Object.values(ERRORS).map((e) => e.status))].map((status) => [String(status), { $ref: '#/components/responses/Error' }]),
    );
    paths[r.path] ??= {};
    paths[r.path]![r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      tags: r.tags,
      ...(r.open ? { security: [] } : {}),
      parameters: [...params, ...query],
      ...(r.body ? { requestBody: { required: !r.bodyOptional, content: { 'application/json': { schema: plain(r.body) } } } } : {}),
      responses: {
        [String(r.response.status)]: {
          description: r.response.description,
          ...(r.response.schema ? { content: { [r.response.contentType ?? 'application/json']: { schema: plain(r.response.schema) } } } : {}),
        },
        ...(r.open ? {} : errors),
      },
    };
  }
  cached = {
    openapi: '3.1.0',
    info: { title: 'sandboxed', version: '1', description: 'Isolated Docker sandboxes with persistent workspaces, coding agents and live previews.' },
    components: {
      schemas: { Sandbox: plain(Sandbox), Error: plain(ErrorBody) },
      responses: { Error: { description: 'An error (see the code registry).', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }],
    paths,
  };
  return cached;
}
