import { Type } from '@sinclair/typebox';
import { errorMessage } from '../log.ts';
import { buildOpenApi } from './openapi.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery, Ready } from './schemas.ts';

const tags = ['health'];

async function readiness(ctx: RequestContext) {
  const checks = { sqlite: 'ok', runtime: 'ok' };
  try {
    ctx.deps.store.db.get('SELECT 1');
  } catch (err) {
    checks.sqlite = errorMessage(err);
  }
  try {
    await Promise.race([
      ctx.deps.runtime.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
    ]);
  } catch (err) {
    checks.runtime = errorMessage(err);
  }
  const ready = checks.sqlite === 'ok' && checks.runtime === 'ok';
  return { status: ready ? 200 : 503, body: { ready, checks } };
}

/** Liveness, readiness and the OpenAPI document: open, no token needed. */
export function healthRoutes(all: () => Route[]): Route[] {
  return [
    {
      method: 'GET', path: '/healthz', operationId: 'healthz', tags, open: true, summary: 'Liveness: answers `ok` while the process serves',
      query: NoQuery, response: { status: 200, schema: Type.Literal('ok'), description: 'Plain text `ok`.' },
      handler: () => ({ status: 200, body: 'ok', headers: { 'content-type': 'text/plain; charset=utf-8' } }),
    },
    {
      method: 'GET', path: '/readyz', operationId: 'readyz', tags, open: true, summary: 'Readiness: SQLite and the container runtime both answer',
      query: NoQuery, response: { status: 200, schema: Ready, description: 'Ready (503 with the failing check otherwise).' },
      handler: readiness,
    },
    {
      method: 'GET', path: '/openapi.json', operationId: 'openapi', tags, open: true, summary: 'This OpenAPI 3.1 document',
      query: NoQuery, response: { status: 200, description: 'OpenAPI 3.1.' },
      handler: () => ({ status: 200, body: buildOpenApi(all()) }),
    },
  ];
}
