import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

describe('bad input is refused before any side effect', () => {
  let d: Daemon;
  let existing: { id: string; name: string };

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_MAX_BODY_BYTES: '4096' } });
    existing = (await d.api('POST', '/v1/sandboxes', { name: 'taken' })).body;
  });
  afterAll(() => d?.cleanup());

  /** Rows, containers and workspace directories: what a refused request must leave exactly as it was. */
  async function snapshot() {
    const rows = (await d.api('GET', '/v1/sandboxes?limit=200')).body.data.map((s: any) => `${s.id}:${s.status}:${s.updated_at}`).sort();
    const containers = (await d.containers()).map((c) => `${c.Id}:${c.State}`).sort();
    const dirs = readdirSync(join(d.dataDir, 'workspaces')).sort();
    return { rows, containers, dirs };
  }

  const cases: [string, unknown, RegExp][] = [
    ['an unknown field', { ports: [3000], portz: [1] }, /body\.portz: unknown field/],
    ['a wrong type', { ports: '3000' }, /body\.ports: must be array/],
    ['port 0', { ports: [0] }, /body\.ports\[0\]: must be >= 1/],
    ['port 70000', { ports: [70000] }, /body\.ports\[0\]: must be <= 65535/],
    ['duplicate ports', { ports: [3000, 3000] }, /body\.ports: must not contain duplicates/],
    ['an env key with a dash', { env: { 'bad-key': 'x' } }, /body\.env\.bad-key: 'bad-key' is not an allowed key/],
    ['an env value with NUL', { env: { OK: 'a\u0000b' } }, /body\.env\.OK: has an invalid format/],
    ['a client id that is not a ULID', { id: 'not-a-ulid' }, /body\.id: has an invalid format/],
    ['a name that looks like an id', { name: '01arz3ndektsv4rrffq69g5fav' }, /body\.name: must not look like a sandbox id/],
    ['an uppercase name', { name: 'Shouty' }, /body\.name: has an invalid format/],
    ['an idle policy that does not exist', { idle_policy: 'nap' }, /body\.idle_policy/],
    ['a label key with spaces', { labels: { 'a b': 'x' } }, /body\.labels\.a b/],
    ['an image not allowed', { image: 'alpine:latest' }, /image 'alpine:latest' is not allowed/],
    ['a body that is not an object', [1, 2], /body: must be object/],
  ];

  for (const [what, body, message] of cases) {
    it(`refuses ${what} with 400 naming it, and changes nothing`, async () => {
      const before = await snapshot();
      const r = await d.api('POST', '/v1/sandboxes', body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_request', retryable: false });
      expect(r.body.error.message).toMatch(message);
      expect(await snapshot()).toEqual(before);
    });
  }

  it('refuses a body that is not JSON', async () => {
    const before = await snapshot();
    const r = await d.api('POST', '/sandbox', '{"ports": [3000');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/body: not valid JSON/);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses an oversized body with 413 before reading it', async () => {
    const before = await snapshot();
    const r = await d.api('POST', '/v1/sandboxes', { env: { BIG: 'x'.repeat(8000) } });
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: 'too_large' });
    expect(await snapshot()).toEqual(before);
  });

  it('answers a duplicate name or id with 409 and changes nothing', async () => {
    const before = await snapshot();
    const byName = await d.api('POST', '/v1/sandboxes', { name: 'taken' });
    expect(byName.status).toBe(409);
    expect(byName.body.error.message).toMatch(/name 'taken' is already used/);
    const byId = await d.api('POST', '/v1/sandboxes', { id: existing.id.toLowerCase() });
    expect(byId.status).toBe(409);
    expect(await snapshot()).toEqual(before);
  });

  it('takes a client-chosen id in either case, the letters W to Z included (generated ids contain them)', async () => {
    for (const id of ['01JZWXYZ0123456789ABCDEFGH', '01jzwxyz0123456789abcdefgk']) {
      const r = await d.api('POST', '/v1/sandboxes', { id });
      expect(r.status, r.text).toBe(201);
      expect(r.body.id).toBe(id.toUpperCase());
      expect((await d.api('DELETE', `/v1/sandboxes/${id}?purge=true`)).status).toBe(200);
    }
  });

  it('refuses malformed ids in the path with 400 and unknown ones with 404', async () => {
    for (const bad of ['..%2f..', 'a'.repeat(200), '%00', 'UPPER_CASE!', '%E0%A4%A']) {
      const r = await d.api('GET', `/v1/sandboxes/${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.message).toMatch(/^id: /);
    }
    const unknown = await d.api('POST', '/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV/stop');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
  });

  it('refuses unknown and repeated query parameters', async () => {
    expect((await d.api('GET', '/v1/sandboxes?colour=blue')).body.error.message).toMatch(/query\.colour: unknown field/);
    expect((await d.api('GET', '/v1/sandboxes?limit=1&limit=2')).body.error.message).toMatch(/query\.limit: given 2 times/);
    expect((await d.api('GET', '/v1/sandboxes?limit=0')).status).toBe(400);
    expect((await d.api('GET', '/v1/sandboxes?cursor=nonsense')).body.error.message).toMatch(/query\.cursor/);
  });
});
