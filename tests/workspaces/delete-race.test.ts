import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, docker, execIn, startDaemon, TEST_IMAGE, type Daemon } from '../support/daemon.ts';
import { fingerprint, makeCanary, type Canary } from './plant.ts';

/**
 * Keeps swapping t/a or t/a/b (real directories of files) for a link to $1 or $2 held a few ms, forever:
 * against the old path-based recursive rm this loses canary files within ~60 rounds. Its links
 * name host paths: inside a container they lead nowhere, so only a host-side walk that followed one could
 * reach what they name.
 */
const SWAPPER = `
cd /home/sandbox/workspace/app || exit 1
i=0
while :; do
  i=$((i + 1))
  if [ $((i % 2)) = 0 ]; then T="$1"; else T="$2"; fi
  mkdir -p t/a/b 2>/dev/null
  for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo x > t/a/f$n 2>/dev/null; echo x > t/a/b/f$n 2>/dev/null; done
  if [ $((i % 3)) = 0 ]; then D=t/a/b; else D=t/a; fi
  mv $D $D.real 2>/dev/null && ln -s "$T" $D 2>/dev/null && usleep 3000
  rm -f $D 2>/dev/null; mv $D.real $D 2>/dev/null; usleep 1000
done`;

describe('recursive deletes against a tree that changes under them', () => {
  let d: Daemon;
  let id: string;
  let other: string;
  let canary: Canary;
  const ws = (sandbox: string, ...p: string[]) => join(d.dataDir, 'workspaces', sandbox, 'workspace/app', ...p);
  /** Everything outside the raced workspace a followed link could reach: the canary, the other tenant's files, the database's presence. */
  const outside = () => fingerprint(canary.dir, canary.file, ws(other, 'keep')) + readdirSync(d.dataDir).sort().join(',') + statSync(join(d.dataDir, 'sandboxed.db')).isFile();
  /** Waits (a bounded while) for the swapper to make `t` again; `t` itself is never a link, so existsSync follows nothing. */
  const remade = async () => {
    for (let i = 0; i < 400 && !existsSync(ws(id, 't', 'a')); i++) await new Promise((r) => setTimeout(r, 5));
  };
  const del = (path: string) => d.api('DELETE', `/v1/sandboxes/${id}/files?path=${path}&recursive=true`);

  beforeAll(async () => {
    d = await startDaemon();
    id = await createSandbox(d);
    other = await createSandbox(d);
    expect((await d.api('PUT', `/v1/sandboxes/${other}/files`, { path: 'keep/data.txt', content: 'other tenant' })).status).toBe(200);
    canary = makeCanary(d.dataDir);
  });
  // cleanup() also removes the swapper container: it carries this daemon's instance label.
  afterAll(() => d?.cleanup());

  it('a process swapping directories for links to the data dir never makes a host-side delete touch anything outside (250 rounds)', async () => {
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    const before = outside();
    const owner = statSync(ws(id));
    // A second container on the stopped sandbox's workspace: what an app woken mid-delete would do, made to
    // happen while the daemon walks host-side (the lifecycle lock now keeps the sandbox itself from waking).
    const swapper = await docker.createContainer({
      Image: TEST_IMAGE, User: `${owner.uid}:${owner.gid}`, Cmd: ['sh', '-c', SWAPPER, 'sh', canary.dir, d.dataDir],
      Labels: { 'sandboxed.instance': d.instance },
      HostConfig: { Binds: [`${join(d.dataDir, 'workspaces', id)}:/home/sandbox`], NetworkMode: 'none', CapDrop: ['ALL'] },
    });
    await swapper.start();
    try {
      const outcomes: Record<number, number> = {};
      // Past 250 rounds only until 100 have removed a tree (capped at 500): the share that does depends on load.
      for (let round = 0; round < 500 && (round < 250 || (outcomes[200] ?? 0) < 100); round++) {
        await remade();
        const r = await del('t');
        outcomes[r.status] = (outcomes[r.status] ?? 0) + 1;
        expect([200, 404, 409], `round ${round}: ${r.text}`).toContain(r.status);
        expect(outside(), `round ${round}`).toBe(before);
      }
      // Most rounds removed a real, changing tree (a 409 is a tree that kept changing, a 404 one not yet remade).
      expect(outcomes[200]).toBeGreaterThanOrEqual(100);
    } finally {
      await swapper.remove({ force: true });
    }
    expect(readFileSync(ws(other, 'keep/data.txt'), 'utf8')).toBe('other tenant');
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('stopped');
    expect((await d.api('GET', `/v1/sandboxes/${other}`)).status).toBe(200);
  }, 300_000);

  it("the sandbox's own process swapping directories while it runs: deletes run inside it and touch nothing outside (60 rounds)", async () => {
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    const before = outside();
    const script = SWAPPER.replaceAll('"$1"', `'${canary.dir}'`).replaceAll('"$2"', `'${d.dataDir}'`);
    writeFileSync(join(d.dataDir, 'workspaces', id, 'swap.sh'), script);
    expect((await execIn(id, ['sh', '-c', 'setsid sh /home/sandbox/swap.sh >/dev/null 2>&1 </dev/null &'])).code).toBe(0);
    // Rounds continue past 60 until 20 deletes have succeeded (capped at 200): how many of them lose the race
    // to the writer depends on the machine's load, and the point is that none of them reaches outside.
    let ok = 0;
    for (let round = 0; round < 200 && (round < 60 || ok < 20); round++) {
      await remade();
      const r = await del('t');
      // rm -rf racing a writer may say "Directory not empty": a clean 502 the client can retry.
      expect([200, 404, 502], `round ${round}: ${r.text}`).toContain(r.status);
      if (r.status === 502) expect(r.body.error.code).toBe('sandbox_unavailable');
      if (r.status === 200) ok++;
      expect(outside(), `round ${round}`).toBe(before);
    }
    expect(ok).toBeGreaterThanOrEqual(20);
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    expect(outside()).toBe(before);
  }, 240_000);

  it('a preview request during a host-side delete of a big tree waits for the delete, which finishes before the app starts', async () => {
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    const before = outside();
    const big = ws(id, 'big');
    for (let i = 0; i < 200; i++) {
      mkdirSync(join(big, `d${i}`), { recursive: true });
      for (let j = 0; j < 150; j++) writeFileSync(join(big, `d${i}`, `f${j}`), 'x');
    }
    let settled = false;
    const deleting = del('big').finally(() => (settled = true));
    // Wait until the walk has started (a directory is gone) and fire the wake while it is still going.
    while (!settled && readdirSync(big).length === 200) await new Promise((r) => setTimeout(r, 5));
    expect(settled, 'the delete ended before it could be raced; make the tree bigger').toBe(false);
    const wake = d.gateway(`s-${id.toLowerCase()}-3000.preview.localhost`, '/');
    let runningWhileTreeLeft = false;
    while (!settled) {
      const tree = existsSync(big);
      const running = (await docker.getContainer(`s-${id}`).inspect()).State.Running;
      if (tree && running) runningWhileTreeLeft = true;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await deleting).status).toBe(200);
    expect((await wake).status).toBeLessThan(500);
    expect(runningWhileTreeLeft).toBe(false);
    expect(existsSync(big)).toBe(false);
    // The audit log orders them: the delete (recorded under the lock, when the walk ended) before the wake's start.
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
    const db = new DatabaseSync(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
    try {
      const rows = db.prepare("SELECT seq, action, detail FROM audit_log WHERE sandbox_id = ? AND action IN ('files.delete', 'sandbox.start') ORDER BY seq").all(id) as { seq: number; action: string; detail: string }[];
      const deleted = rows.findLast((r) => r.action === 'files.delete' && r.detail.includes('"big"'))!;
      const woke = rows.findLast((r) => r.action === 'sandbox.start' && r.detail.includes('wake:http'))!;
      expect(deleted).toBeDefined();
      expect(woke).toBeDefined();
      expect(woke.seq).toBeGreaterThan(deleted.seq);
    } finally {
      db.close();
    }
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('running');
    expect(outside()).toBe(before);
  }, 240_000);
});
