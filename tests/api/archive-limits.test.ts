import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, startDaemon, type Daemon } from '../support/daemon.ts';
import { tarOf } from '../support/tar.ts';

const run = promisify(execFile);


describe('archive transfers are bounded', () => {
  let d: Daemon;
  let id: string;
  const app = (...p: string[]) => join(d.dataDir, 'workspaces', id, 'workspace/app', ...p);
  const put = (path: string, body: Buffer) => fetch(`${d.url}/v1/sandboxes/${id}${path}`, { method: 'PUT', body });

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_SESSIONS_PER_SANDBOX: '2' } });
    id = await createSandbox(d);
  });
  afterAll(() => d?.cleanup());

  it('refuses an archive entry deeper than 128 directories, or with a name over 255 bytes, before writing anything', async () => {
    for (const bad of [`${'d/'.repeat(130)}f`, `ok/${'n'.repeat(256)}`]) {
      const r = await put('/archive?path=deep', tarOf([{ name: 'first.txt' }, { name: bad }]));
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/deep|longer than 255/);
      expect(readdirSync(app())).not.toContain('deep');
    }
    const fine = await put('/archive?path=deep', tarOf([{ name: `${'d/'.repeat(100)}f` }]));
    expect(fine.status).toBe(200);
  });

  it('lists a directory of 12,000 entries as its first 10,000, sorted, and says it was truncated', async () => {
    mkdirSync(app('many'));
    // Made by another process, so this one's event loop (and its keep-alive connections) stays live meanwhile.
    await run('bash', ['-c', 'seq -f "f%06g" 0 11999 | xargs touch'], { cwd: app('many') });
    expect(readdirSync(app('many')).length).toBe(12_000);
    const r = await d.api('GET', `/v1/sandboxes/${id}/files?path=many`);
    expect(r.status).toBe(200);
    expect(r.body.truncated).toBe(true);
    const names = (r.body.entries as { name: string }[]).map((e) => e.name);
    expect(names.length).toBe(10_000);
    expect(names).toEqual([...names].sort());
  });

  it('counts archive downloads that stall against the sandbox\'s sessions cap, and frees the slot when they go', async () => {
    // Two clients ask for the 12,000-entry tree and never read: each holds its listing in memory.
    // Each stops reading after the first bytes of its answer: by then its download holds a session slot. (Polling
    // with a third download instead would race them for those very slots.)
    const began: Promise<void>[] = [];
    const stalled = [0, 1].map(() => {
      const s = connect({ host: '127.0.0.1', port: d.port });
      s.on('error', () => undefined);
      began.push(new Promise((resolve) => s.once('data', () => (s.pause(), resolve()))));
      s.write(`GET /v1/sandboxes/${id}/archive?path=many HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
      return s;
    });
    const bothBegan = await Promise.race([Promise.all(began).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    expect(bothBegan).toBe(true);
    const third = await d.api('GET', `/v1/sandboxes/${id}/archive?path=deep`);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBeTruthy();
    expect(third.body.error.message).toMatch(/SANDBOXD_SESSIONS_PER_SANDBOX=2/);
    stalled.forEach((s) => s.destroy());
    let after = 0;
    for (let i = 0; i < 50 && after !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = (await fetch(`${d.url}/v1/sandboxes/${id}/archive?path=deep`)).status;
    }
    expect(after).toBe(200);
  });
});
