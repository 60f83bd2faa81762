import { describe, expect, it } from 'vitest';
import { compile, match, type Route } from '../../src/api/route.ts';
import { allRoutes } from '../../src/api/server.ts';

const route = (method: Route['method'], path: string): Route => ({
  method, path, operationId: `${method} ${path}`, summary: '', tags: [], response: { status: 200, description: '' }, handler: () => undefined,
});
const table = [route('GET', '/v1/sandboxes'), route('GET', '/v1/sandboxes/{id}'), route('DELETE', '/v1/sandboxes/{id}'), route('GET', '/v1/sandboxes/{id}/tasks/{taskId}'), route('GET', '/a.b/{x}')].map(compile);
const found = (method: string, path: string) => {
  const m = match(table, method, path);
  return typeof m === 'object' ? [m.route.operationId, m.params] : m;
};

describe('route matching', () => {
  it('matches whole paths and names each parameter, one segment each', () => {
    expect(found('GET', '/v1/sandboxes')).toEqual(['GET /v1/sandboxes', {}]);
    expect(found('GET', '/v1/sandboxes/abc')).toEqual(['GET /v1/sandboxes/{id}', { id: 'abc' }]);
    expect(found('DELETE', '/v1/sandboxes/abc')).toEqual(['DELETE /v1/sandboxes/{id}', { id: 'abc' }]);
    expect(found('GET', '/v1/sandboxes/s1/tasks/t1')).toEqual(['GET /v1/sandboxes/{id}/tasks/{taskId}', { id: 's1', taskId: 't1' }]);
    // Parameters arrive still percent-encoded (the server decodes them): an encoded slash stays inside its segment.
    expect(found('GET', '/v1/sandboxes/alice%2Fweb')).toEqual(['GET /v1/sandboxes/{id}', { id: 'alice%2Fweb' }]);
    expect(found('GET', '/v1/sandboxes/%F0%9F%98%80')).toEqual(['GET /v1/sandboxes/{id}', { id: '%F0%9F%98%80' }]);
  });

  it('says methodMismatch for a known path under another method, and nothing for an unknown path', () => {
    expect(found('POST', '/v1/sandboxes/abc')).toBe('methodMismatch');
    expect(found('get', '/v1/sandboxes')).toBe('methodMismatch');
    for (const path of ['/v1/sandboxes/', '/v1/sandboxes/a/b', '/v1/sandboxes//tasks/t', '/v1/sandboxesx', '/v1/Sandboxes', 'v1/sandboxes', '', '/', `/v1/sandboxes/${'a'.repeat(100_000)}/x`]) {
      expect(found('GET', path), path).toBeUndefined();
    }
  });

  it('takes regex characters in a path literally', () => {
    expect(found('GET', '/a.b/1')).toEqual(['GET /a.b/{x}', { x: '1' }]);
    expect(found('GET', '/aXb/1')).toBeUndefined();
  });

  it("in the API's own table, every route is reached by its own path: none is shadowed by one before it", () => {
    const routes = allRoutes();
    const compiled = routes.map(compile);
    expect(routes.length).toBeGreaterThan(20);
    for (const r of routes) {
      const sample = r.path.replace(/\{(\w+)\}/g, (_m, name: string) => `sample-${name}`);
      const m = match(compiled, r.method, sample);
      expect(typeof m === 'object' ? m.route : m, `${r.method} ${r.path}`).toBe(r);
    }
    // Operation ids are unique: metrics and the OpenAPI document are keyed by them.
    expect(new Set(routes.map((r) => r.operationId)).size).toBe(routes.length);
  });
});
