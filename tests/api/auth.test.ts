import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, startDaemon, type Daemon } from '../support/daemon.ts';

const ALICE = { authorization: 'Bearer alice-secret-1' };
const BOB = { authorization: 'Bearer bob-secret-22' };
const ROOT_TOKEN = { authorization: 'Bearer root-secret-333' };

/** Runs the daemon with `env` and answers its exit code and output (it is expected to refuse to start). */
async function refusedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(join(ROOT, 'node_modules/.bin/node'), ['--disable-warning=ExperimentalWarning', 'src/main.ts'], {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '', SANDBOXED_DATA_DIR: '/tmp/sandboxd-refused', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (b) => (output += b));
  proc.stderr.on('data', (b) => (output += b));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((res) => proc.on('exit', res));
  clearTimeout(timer);
  return { code, output };
}

describe('auth and tenancy', () => {
  let d: Daemon;
  let alices: string;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-1, bob=bob-secret-22 ,root:root-secret-333:admin' } });
    alices = (await d.api('POST', '/v1/sandboxes', { name: 'alices' }, ALICE)).body.id;
  });
  afterAll(() => d?.cleanup());

  it('answers 401 without a token, with a wrong one, and with an empty one', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope-nope-nope' }, { authorization: 'Bearer ' }, { authorization: 'alice-secret-1' }] as Record<string, string>[]) {
      const r = await d.api('GET', '/v1/sandboxes', undefined, headers);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await d.api('POST', '/sandbox', {})).status).toBe(401);
  });

  it('keeps /healthz and /readyz open', async () => {
    expect((await d.api('GET', '/healthz')).status).toBe(200);
    expect((await d.api('GET', '/readyz')).status).toBe(200);
  });

  it("makes the creating token's tenant the owner, accepting both token formats", async () => {
    expect((await d.api('GET', `/v1/sandboxes/${alices}`, undefined, ALICE)).body.owner).toBe('alice');
    const bobs = await d.api('POST', '/sandbox', {}, BOB);
    expect(bobs.status).toBe(201);
    expect(bobs.body.owner).toBe('bob');
  });

  it("hides one tenant's sandbox from another: 404 on every route, absent from lists", async () => {
    for (const [method, path] of [
      ['GET', `/v1/sandboxes/${alices}`], ['GET', '/v1/sandboxes/alices'], ['POST', `/v1/sandboxes/${alices}/stop`],
      ['POST', `/v1/sandboxes/${alices}/start`], ['POST', `/v1/sandboxes/${alices}/keepalive`], ['DELETE', `/v1/sandboxes/${alices}`],
      ['DELETE', `/v1/sandboxes/${alices}?purge=true`], ['GET', `/sandbox/${alices}`], ['DELETE', `/sandbox/${alices}`],
      ['POST', `/sandbox/${alices}/purge`], ['POST', `/sandbox/${alices}/keepalive`],
    ] as const) {
      const r = await d.api(method, path, undefined, BOB);
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    const exec = await d.api('POST', `/v1/sandboxes/${alices}/exec`, { cmd: ['true'] }, BOB);
    expect(exec.status).toBe(404);
    expect((await d.api('GET', '/sandboxes', undefined, BOB)).body.map((s: any) => s.id)).not.toContain(alices);
    expect((await d.api('GET', '/v1/sandboxes?owner=alice', undefined, BOB)).status).toBe(400);
    expect((await d.api('GET', `/v1/sandboxes/${alices}`, undefined, ALICE)).body.status).toBe('running');
  });

  it('lets an admin token see and act on every tenant', async () => {
    const all = (await d.api('GET', '/v1/sandboxes', undefined, ROOT_TOKEN)).body.data.map((s: any) => s.owner);
    expect(new Set(all)).toEqual(new Set(['alice', 'bob']));
    expect((await d.api('GET', '/v1/sandboxes?owner=bob', undefined, ROOT_TOKEN)).body.data.every((s: any) => s.owner === 'bob')).toBe(true);
    expect((await d.api('POST', `/v1/sandboxes/${alices}/stop`, undefined, ROOT_TOKEN)).body.status).toBe('stopped');
  });

  it('refuses to start with auth disabled on a non-loopback bind, naming the setting', async () => {
    const r = await refusedStart({ SANDBOXED_API_BIND: `0.0.0.0:${await freePort()}`, SANDBOXD_API_AUTH_DISABLED: 'true' });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/SANDBOXD_API_AUTH_DISABLED: auth may be off only while the API binds loopback/);
  });

  it('refuses to start with auth on and no tokens, or with a malformed token entry', async () => {
    const none = await refusedStart({ SANDBOXD_API_AUTH_DISABLED: 'false' });
    expect(none.code).not.toBe(0);
    expect(none.output).toMatch(/SANDBOXD_API_TOKENS: auth is enabled .* but no tokens are set/);
    const bad = await refusedStart({ SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:short' });
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/SANDBOXD_API_TOKENS: entry 1 \('alice'\): the secret must be at least 8 characters/);
    const badValue = await refusedStart({ HTTP_PORT: 'eighty' });
    expect(badValue.output).toMatch(/HTTP_PORT: must be a whole number/);
  });

  it('records failed authentication in the audit log without the presented secret', async () => {
    await d.api('GET', '/v1/sandboxes', undefined, { authorization: 'Bearer leaked-guess-123' });
    // Through getBuiltinModule: the test bundler does not list node:sqlite among the built-ins.
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
    const db = new DatabaseSync(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
    const rows = db.prepare("SELECT actor, action, outcome, detail FROM audit_log WHERE action = 'auth.failed'").all() as any[];
    db.close();
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain('leaked-guess-123');
  });
});
