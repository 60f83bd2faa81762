import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { docker, startDaemon, type Daemon } from '../support/daemon.ts';

const bearer = (name: string) => ({ authorization: `Bearer ${name}-secret-quotas-0001` });
const FILE_TOKENS = [
  { name: 'sb', secret: 'sb-secret-quotas-0001', quotas: { sandboxes: 2 } },
  { name: 'mem', secret: 'mem-secret-quotas-0001', quotas: { memory_mb: 400 } },
  { name: 'disk', secret: 'disk-secret-quotas-0001', quotas: { disk_mb: 1500 } },
  { name: 'race', secret: 'race-secret-quotas-0001', quotas: { sandboxes: 1 } },
];
// Inline tokens too: `run` sets one quota in SANDBOXD_API_TOKENS, `free` takes the SANDBOXD_TENANT_MAX_* defaults.
const INLINE_TOKENS = 'run:run-secret-quotas-0001:running=1,free:free-secret-quotas-0001,root:root-secret-quotas-0001:admin';

describe('per-tenant quotas', () => {
  let d: Daemon;
  const file = join(tmpdir(), `sandboxd-tokens-${process.pid}-${Date.now()}.json`);

  beforeAll(async () => {
    writeFileSync(file, JSON.stringify(FILE_TOKENS), { mode: 0o600 });
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: INLINE_TOKENS, SANDBOXD_API_TOKENS_FILE: file } });
  });
  afterAll(async () => {
    await d?.cleanup();
    rmSync(file, { force: true });
  });

  const create = (tenant: string, body: Record<string, unknown> = {}) => d.api('POST', '/v1/sandboxes', body, bearer(tenant));
  const count = async (tenant: string) => (await d.api('GET', '/sandboxes', undefined, bearer(tenant))).body.length;
  const containers = async () => (await d.containers()).length;

  /** Expects a refusal naming `quota` and its numbers, then checks it left no row and no container behind. */
  async function refused(tenant: string, body: Record<string, unknown>, quota: string, limit: number, used: number, requested: number): Promise<void> {
    const [rows, boxes] = [await count(tenant), await containers()];
    const r = await create(tenant, body);
    expect(r.status, r.text).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'quota_exceeded', retryable: false, details: { quota, limit, used, requested } });
    expect(r.body.error.message).toContain(`quota ${quota} is ${limit}`);
    expect(r.body.error.message).toContain(`uses ${used}`);
    expect([await count(tenant), await containers()]).toEqual([rows, boxes]);
  }

  it('refuses a create past the sandboxes quota with 403 quota_exceeded, leaving no row and no container, while another tenant still creates', async () => {
    for (let i = 0; i < 2; i++) expect((await create('sb')).status).toBe(201);
    await refused('sb', {}, 'sandboxes', 2, 2, 1);
    expect((await create('free')).status).toBe(201);
    await refused('sb', { name: 'later' }, 'sandboxes', 2, 2, 1);
  });

  it('refuses a create and a start past the running quota, and a preview wake of a stopped sandbox too (403, it stays stopped)', async () => {
    const first = (await create('run')).body.id;
    await refused('run', {}, 'running', 1, 1, 1);
    expect((await d.api('POST', `/v1/sandboxes/${first}/stop`, undefined, bearer('run'))).body.status).toBe('stopped');
    expect((await create('run')).status).toBe(201);

    const start = await d.api('POST', `/v1/sandboxes/${first}/start`, undefined, bearer('run'));
    expect(start.status).toBe(403);
    expect(start.body.error).toMatchObject({ code: 'quota_exceeded', details: { quota: 'running', limit: 1, used: 1, requested: 1 } });

    const wake = await d.gateway(`s-${first.toLowerCase()}-3000.preview.localhost`, '/');
    expect(wake.status, wake.body).toBe(403);
    const error = JSON.parse(wake.body).error;
    expect(error).toMatchObject({ code: 'quota_exceeded', details: { quota: 'running' } });
    // An anonymous visitor learns which quota, not the tenant's numbers.
    expect(error.details).not.toHaveProperty('limit');
    expect((await d.api('GET', `/v1/sandboxes/${first}`, undefined, bearer('run'))).body.status).toBe('stopped');
    expect((await docker.getContainer(`s-${first}`).inspect()).State.Running).toBe(false);
  });

  it('counts the memory limits of running sandboxes against memory_mb', async () => {
    expect((await create('mem')).status).toBe(201); // the test daemon's default is 256 MB
    await refused('mem', {}, 'memory_mb', 400, 256, 256);
    expect((await create('mem', { resources: { memory_mb: 128 } })).status).toBe(201);
  });

  it('counts every workspace limit against disk_mb (a sandbox without its own counts the server default)', async () => {
    expect((await create('disk', { resources: { disk_mb: 1000 } })).status).toBe(201);
    await refused('disk', { resources: { disk_mb: 600 } }, 'disk_mb', 1500, 1000, 600);
    // The fixture's default (SANDBOXD_DEFAULT_DISK_MB=1024) counts for a create that names none.
    await refused('disk', {}, 'disk_mb', 1500, 1000, 1024);
  });

  it('refuses always_on to a tenant without an always_on quota, and lets an admin have it', async () => {
    await refused('free', { idle_policy: 'always_on' }, 'always_on', 0, 0, 1);
    expect((await create('free', { idle_policy: 'sleep' })).status).toBe(201);
    expect((await create('root', { idle_policy: 'always_on' })).status).toBe(201);
  });

  it('lets exactly one of two simultaneous creates take the last slot', async () => {
    const answers = await Promise.all([create('race', { name: 'one' }), create('race', { name: 'two' })]);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 403]);
    expect(await count('race')).toBe(1);
  });
});

describe('quota settings', () => {
  const base = { SANDBOXD_API_AUTH_DISABLED: 'false' };

  it('reads quotas from token entries and SANDBOXD_TENANT_MAX_*, with unlimited and admin tokens unbounded by default', () => {
    const c = loadConfig({ ...base, SANDBOXD_API_TOKENS: 'a:aaaaaaaa:running=2:disk_mb=unlimited,b:bbbbbbbb:admin,c:cccccccc', SANDBOXD_TENANT_MAX_SANDBOXES: 'unlimited' });
    expect(c.tokens.map((t) => [t.name, t.admin, t.quotas])).toEqual([['a', false, { running: 2, diskMb: null }], ['b', true, undefined], ['c', false, undefined]]);
    expect(c.tenantQuotas).toEqual({ sandboxes: null, running: null, memoryMb: null, diskMb: null, alwaysOn: 0 });
    expect(loadConfig({ ...base, SANDBOXD_API_TOKENS: 'c:cccccccc', SANDBOXD_TENANT_MAX_RUNNING: '3' }).tenantQuotas).toMatchObject({ running: 3, sandboxes: null });
  });

  it('names the variable and the entry of every bad quota', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ SANDBOXD_API_TOKENS: 'a:aaaaaaaa:running=-1' })).toMatch(/SANDBOXD_API_TOKENS: entry 1: expected name:secret, then optionally :admin and :quota=N .*got 'running=-1'/);
    expect(problems({ SANDBOXD_API_TOKENS: 'a:aaaaaaaa:cpus=2' })).toMatch(/SANDBOXD_API_TOKENS: entry 1: .*got 'cpus=2'/);
    expect(problems({ SANDBOXD_API_TOKENS: 'a:aaaaaaaa', SANDBOXD_TENANT_MAX_RUNNING: 'lots' })).toMatch(/SANDBOXD_TENANT_MAX_RUNNING: must be a whole number from 0 .* or unlimited \(got 'lots'\)/);
    expect(problems({ SANDBOXD_API_TOKENS: 'a:aaaaaaaa:running=1,a:bbbbbbbb:running=2' })).toMatch(/entry 2 \('a'\): another token of tenant 'a' sets different quotas/);
    const file = join(tmpdir(), `sandboxd-bad-tokens-${process.pid}.json`);
    writeFileSync(file, JSON.stringify([{ name: 'x', secret: 'xxxxxxxx', quotas: { memory_mb: 'big' } }]));
    expect(problems({ SANDBOXD_API_TOKENS_FILE: file })).toMatch(/SANDBOXD_API_TOKENS_FILE: entry 1: quotas.memory_mb: expected/);
    rmSync(file, { force: true });
    expect(problems({ SANDBOXD_API_TOKENS_FILE: '/nonexistent/tokens.json' })).toMatch(/SANDBOXD_API_TOKENS_FILE: cannot read '\/nonexistent\/tokens.json'/);
  });
});
