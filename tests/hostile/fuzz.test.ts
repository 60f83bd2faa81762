import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../support/prng.ts';
import { Daemon, startDaemon } from '../support/daemon.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 7);
const N = 1000;

/** Everything a request could change: every table, the containers, the workspace trees. */
function snapshot(d: Daemon, containers: unknown): string {
  const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  const db = new DatabaseSync(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
  const data = Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).all().map((r) => JSON.stringify(r)).sort()]));
  db.close();
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const st = statSync(p, { throwIfNoEntry: false });
      // A workspace image's mtime is its filesystem's (the kernel writes its journal and inode tables on its
      // own schedule); what the fuzzer could change is inside it, walked below.
      files.push(`${p} ${e.isDirectory() ? 'dir' : st?.size} ${e.name.endsWith('.img') ? '' : st?.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(join(d.dataDir, 'workspaces'));
  return JSON.stringify({ data, containers, files: files.sort() });
}

describe('R6 input fuzzing', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  it(`answers ${N} generated malformed or oversized requests on every route with a 4xx and changes nothing (seed ${SEED})`, async () => {
    const running = (await d.api('POST', '/v1/sandboxes', { name: 'fuzz-running' })).body.id as string;
    const stopped = (await d.api('POST', '/v1/sandboxes', { name: 'fuzz-stopped' })).body.id as string;
    await d.api('PUT', `/v1/sandboxes/${running}/files`, { path: 'keep.txt', content: 'keep' });
    await d.api('POST', `/v1/sandboxes/${stopped}/stop`);
    const containers = async () => (await d.containers()).map((c) => `${c.Names[0]} ${c.State}`).sort();
    const before = snapshot(d, await containers());

    const doc = (await d.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), hasBody: !!op.requestBody })));
    expect(routes.length).toBeGreaterThan(30);

    const random = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const junkIds = ['..', '%2e%2e', '%00', 'a'.repeat(300), 'ÿ', '%F0%9F%92%A9', '01ARZ3NDEKTSV4RRFFQ69G5FA', '01ARZ3NDEKTSV4RRFFQ69G5FAV', "x';DROP TABLE sandboxes;--", '%ZZ', '-', '_', 'A B'];
    const junkValues: unknown[] = [null, true, 0, -1, 1e308, 'x'.repeat(70_000), [], [[[[[]]]]], JSON.parse('{"__proto__":{"admin":true},"zz":1}'), '\u0000', 'ñ', { constructor: { prototype: {} } }];
    const badJson = ['{', '{"a":', 'nope', '[1,2', '{"a":1}}', '\u0000', 'NaN', '{"a":NaN}', `${'['.repeat(5000)}`];
    const fill = (path: string, valid: boolean) => path.replace(/\{id\}/g, valid ? pick([running, stopped, 'fuzz-running']) : pick(junkIds))
      .replace(/\{taskId\}/g, pick(['01ARZ3NDEKTSV4RRFFQ69G5FAV', 'nope'])).replace(/\{pid\}/g, pick(['1', '0', '-1', 'x', '99999999999']));

    const failures: string[] = [];
    for (let i = 0; i < N; i++) {
      const route = pick(routes);
      // Every request is made invalid on purpose in at least one way, so no 2xx is ever right.
      const kinds = ['query', ...(route.path.includes('{') ? ['id'] : []), ...(route.method !== 'GET' && route.method !== 'DELETE' ? ['json', 'shape', 'huge'] : [])];
      const kind = pick(kinds);
      let path = fill(route.path, kind !== 'id');
      const headers: Record<string, string> = { 'content-type': pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded', '']) };
      if (random() < 0.3) headers['last-event-id'] = pick(['-1', 'abc', '9'.repeat(40), '']);
      if (random() < 0.2) headers.authorization = pick(['Bearer ', 'Basic eDp5', 'Bearer ' + 'z'.repeat(5000)]);
      if (kind === 'query') path += `${path.includes('?') ? '&' : '?'}zz${Math.floor(random() * 1e6)}=${encodeURIComponent(String(pick(junkValues)).slice(0, 200))}`;
      let body: string | undefined;
      if (route.method !== 'GET' && route.method !== 'DELETE') {
        if (kind === 'json') body = pick(badJson);
        else if (kind === 'shape') body = JSON.stringify(random() < 0.5 ? pick(junkValues) : { [`zz${i}`]: pick(junkValues), cmd: pick(junkValues), path: pick(junkValues), ports: pick(junkValues) });
        else if (kind === 'huge') body = `{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`;
        else body = '{}';
      }
      let status: number;
      try {
        const r = await fetch(`${d.url}${path}`, { method: route.method, headers, ...(body !== undefined ? { body } : {}) });
        status = r.status;
        await r.arrayBuffer();
      } catch (err) {
        failures.push(`${i} ${route.method} ${path.slice(0, 120)} [${kind}]: ${(err as Error).message}`);
        continue;
      }
      if (status < 400 || status >= 500) failures.push(`${i} ${route.method} ${path.slice(0, 120)} [${kind}] body=${String(body).slice(0, 80)} -> ${status}`);
    }
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(snapshot(d, await containers())).toBe(before);
  }, 240_000);
});
