import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

const ALICE = { authorization: 'Bearer alice-secret-1' };
const BOB = { authorization: 'Bearer bob-secret-22' };
const ROOT = { authorization: 'Bearer root-secret-333' };
const VALUE = 'sk-ant-api03-the-real-one';

describe('the secrets API', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-1,bob:bob-secret-22,root:root-secret-333:admin' } });
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('sets a secret write-only: no route answers its value, and another tenant neither sees nor deletes it', async () => {
    const put = await d.api('PUT', '/v1/secrets/ANTHROPIC_API_KEY', { value: VALUE }, ALICE);
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ name: 'ANTHROPIC_API_KEY', scope: 'tenant' });
    const list = await d.api('GET', '/v1/secrets', undefined, ALICE);
    expect(list.body.data.map((s: { name: string }) => s.name)).toEqual(['ANTHROPIC_API_KEY']);
    expect(put.text + list.text).not.toContain(VALUE);
    expect((await d.api('GET', '/v1/secrets', undefined, BOB)).body.data).toEqual([]);
    expect((await d.api('DELETE', '/v1/secrets/ANTHROPIC_API_KEY', undefined, BOB)).status).toBe(404);
    expect((await d.api('GET', '/v1/secrets/ANTHROPIC_API_KEY', undefined, ALICE)).status).toBe(405);
    expect((await d.api('GET', '/v1/secrets', undefined, {})).status).toBe(401);
  });

  it('keeps the value sealed at rest: the key file is 0600 and no file of the data dir holds the value', async () => {
    expect(statSync(join(d.dataDir, 'secrets.key')).mode & 0o777).toBe(0o600);
    for (const f of readdirSync(d.dataDir)) {
      const path = join(d.dataDir, f);
      if (!statSync(path).isFile()) continue;
      expect(readFileSync(path).includes(Buffer.from(VALUE)), f).toBe(false);
    }
  });

  it('global secrets: admins only (admin_only naming the scope), listed to every tenant as global', async () => {
    const refused = await d.api('PUT', '/v1/secrets/OPENAI_API_KEY?scope=global', { value: 'sk-x' }, BOB);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'admin_only', details: { field: 'query.scope' } });
    expect((await d.api('PUT', '/v1/secrets/OPENAI_API_KEY?scope=global', { value: 'sk-platform' }, ROOT)).status).toBe(200);
    expect((await d.api('GET', '/v1/secrets', undefined, BOB)).body.data).toEqual([expect.objectContaining({ name: 'OPENAI_API_KEY', scope: 'global' })]);
    expect((await d.api('DELETE', '/v1/secrets/OPENAI_API_KEY?scope=global', undefined, BOB)).status).toBe(403);
    expect((await d.api('DELETE', '/v1/secrets/OPENAI_API_KEY?scope=global', undefined, ROOT)).body).toEqual({ deleted: true });
    expect((await d.api('GET', '/v1/secrets', undefined, BOB)).body.data).toEqual([]);
  });

  it('refuses bad names, values and scopes with 400 naming the field, and stores nothing', async () => {
    const bad = [
      [await d.api('PUT', '/v1/secrets/1KEY', { value: 'v' }, ALICE), 'name'],
      [await d.api('PUT', '/v1/secrets/has-dash', { value: 'v' }, ALICE), 'name'],
      [await d.api('PUT', `/v1/secrets/${'K'.repeat(65)}`, { value: 'v' }, ALICE), 'name'],
      [await d.api('PUT', '/v1/secrets/KEY', { value: '' }, ALICE), 'body.value'],
      [await d.api('PUT', '/v1/secrets/KEY', { value: 'x'.repeat(16_385) }, ALICE), 'body.value'],
      [await d.api('PUT', '/v1/secrets/KEY', { value: 5 }, ALICE), 'body.value'],
      [await d.api('PUT', '/v1/secrets/KEY', { value: 'sk-\ud800' }, ALICE), 'body.value'],
      [await d.api('PUT', '/v1/secrets/KEY', { value: 'v', extra: 1 }, ALICE), 'body.extra'],
      [await d.api('PUT', '/v1/secrets/KEY?scope=everyone', { value: 'v' }, ALICE), 'query.scope'],
    ] as const;
    for (const [r, field] of bad) {
      expect(r.status, r.text).toBe(400);
      expect(r.body.error.details?.field, r.text).toBe(field);
    }
    expect((await d.api('GET', '/v1/secrets', undefined, ALICE)).body.data.map((s: { name: string }) => s.name)).toEqual(['ANTHROPIC_API_KEY']);
  });

  it('is in the OpenAPI document, with the secret name described', async () => {
    const doc = (await d.api('GET', '/openapi.json', undefined, ALICE)).body;
    expect(Object.keys(doc.paths['/v1/secrets/{name}'])).toEqual(['put', 'delete']);
    expect(doc.paths['/v1/secrets/{name}'].put.parameters[0].description).toMatch(/Secret name/);
  });
});
