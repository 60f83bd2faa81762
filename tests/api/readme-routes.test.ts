import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, startDaemon, type Daemon } from '../support/daemon.ts';

const sh = promisify(execFile);

describe("the README's routes", () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  it("yields the sandbox id from the quick start's curl | sed line, run verbatim in bash", async () => {
    const line = `API=${d.url}\nID=$(curl -s -XPOST $API/sandbox -H 'content-type: application/json' \\\n-d '{"ports":[3000]}' | sed -E 's/.*"id":"([^"]+)".*/\\1/')\necho "$ID"`;
    const { stdout } = await sh('bash', ['-c', line]);
    const id = stdout.trim();
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await d.api('GET', `/sandbox/${id}`)).body).toMatchObject({ id, status: 'running', ports: [3000] });
  });

  it('creates with POST /sandbox and a body sent without a content type, as curl -d does', async () => {
    const r = await fetch(`${d.url}/sandbox`, { method: 'POST', body: '{"ports":[3000],"env":{"ANTHROPIC_API_KEY":"sk-ant-test"}}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const body = await r.json() as any;
    expect(r.status).toBe(201);
    expect(body).toMatchObject({ status: 'running', ports: [3000], env_keys: ['ANTHROPIC_API_KEY'] });
    expect(JSON.stringify(body)).not.toContain('sk-ant-test');
    const env = (await docker.getContainer(`s-${body.id}`).inspect()).Config.Env;
    expect(env).toContain('ANTHROPIC_API_KEY=sk-ant-test');
  });

  it('lists every sandbox with GET /sandboxes as an array and gets one with GET /sandbox/{id}', async () => {
    const { id } = (await d.api('POST', '/sandbox', { ports: [3000] })).body;
    const list = (await d.api('GET', '/sandboxes')).body;
    expect(Array.isArray(list)).toBe(true);
    expect(list.map((s: any) => s.id)).toContain(id);
    const one = (await d.api('GET', `/sandbox/${id}`)).body;
    expect(one).toMatchObject({ id, status: 'running', container_id: expect.any(String) });
  });

  it('postpones the idle reaper with POST /sandbox/{id}/keepalive and no body', async () => {
    const { id } = (await d.api('POST', '/sandbox', {})).body;
    const r = await fetch(`${d.url}/sandbox/${id}/keepalive`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(Date.parse(((await r.json()) as any).keepalive_until)).toBeGreaterThan(Date.now());
  });

  it('stops with POST /v1/sandboxes/{id}/stop, destroys keeping the workspace with DELETE /sandbox/{id}, and purges with POST /sandbox/{id}/purge', async () => {
    const { id } = (await d.api('POST', '/sandbox', {})).body;
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    const del = await d.api('DELETE', `/sandbox/${id}`);
    expect(del.body).toMatchObject({ id, status: 'destroyed' });
    expect(existsSync(join(d.dataDir, 'workspaces', id))).toBe(true);
    const purge = await d.api('POST', `/sandbox/${id}/purge`);
    expect(purge.body).toEqual({ id, status: 'purged' });
    expect(existsSync(join(d.dataDir, 'workspaces', id))).toBe(false);
    expect((await d.api('GET', `/sandbox/${id}`)).status).toBe(404);
  });
});
