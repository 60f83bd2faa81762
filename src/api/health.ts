import { AppError } from '../errors.ts';
import { Type } from '@sinclair/typebox';
import { buildOpenApi } from './openapi.ts';
import type { Route } from './route.ts';
import { NoQuery, Ready } from './schemas.ts';

const tags = ['health'];

/** Liveness, readiness and the OpenAPI document: open, no token needed. */
export function healthRoutes(all: () => Route[]): Route[] {
  return [
    {
      method: 'GET', path: '/healthz', operationId: 'healthz', tags, open: true, summary: 'Liveness: answers `ok` while the process serves',
      query: NoQuery, response: { status: 200, schema: Type.Literal('ok'), description: 'Plain text `ok`.' },
      handler: () => ({ status: 200, body: 'ok', headers: { 'content-type': 'text/plain; charset=utf-8' } }),
    },
    {
      method: 'GET', path: '/readyz', operationId: 'readyz', tags, open: true, summary: 'Readiness: SQLite and the container runtime answer, and the data disk has room',
      query: NoQuery, response: { status: 200, schema: Ready, description: 'Ready (503 with the failing check otherwise).' },
      handler: async (ctx) => {
        const r = await ctx.deps.health.readiness();
        return { status: r.ready ? 200 : 503, body: r };
      },
    },
    {
      method: 'GET', path: '/metrics', operationId: 'metrics', tags, summary: 'Prometheus metrics (an admin token when auth is on: they name every tenant\'s sandboxes)',
      query: NoQuery, response: { status: 200, description: 'Prometheus text format 0.0.4.' },
      handler: (ctx) => {
        // Per-sandbox series carry every tenant's ids, which are also their preview host names.
        if (!ctx.caller.admin) throw new AppError('admin_only', '/metrics names every tenant\'s sandboxes: call it with an admin token (name:secret:admin in SANDBOXD_API_TOKENS)');
        return { status: 200, body: ctx.deps.health.renderMetrics(), headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } };
      },
    },
    {
      method: 'GET', path: '/openapi.json', operationId: 'openapi', tags, open: true, summary: 'This OpenAPI 3.1 document',
      query: NoQuery, response: { status: 200, description: 'OpenAPI 3.1.' },
      handler: () => ({ status: 200, body: buildOpenApi(all()) }),
    },
  ];
}
