import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageFailure } from '../../src/store/disk.ts';
import { Daemon, defaultRuntime, eventually, execIn, ROOT } from '../support/daemon.ts';

/**
 * Issue #11, part 5: a full data disk is an outage of writes, not of the daemon. The data directory lives on
 * a 160 MiB tmpfs this file mounts (no blocks reserved for root, so "full" is full for the daemon too), and
 * a sandbox fills it through its own workspace, the way a tenant would.
 */
const MIB = 1024 * 1024;
const WATERMARK_MB = 16;

const base = mkdtempSync(join(tmpdir(), 'sandboxd-diskfull-'));
const mnt = join(base, 'mnt');
const dataDir = join(mnt, 'data');
const hostFiller = join(mnt, 'host-filler');
const freeBytes = () => {
  const s = statfsSync(mnt);
  return Number(s.bavail) * Number(s.bsize);
};
const host = (id: string) => `s-${id.toLowerCase()}-3000.preview.localhost`;

/** Takes whatever space is left from the host side too, in small blocks, until the kernel says ENOSPC. */
function topUpFromHost(): void {
  const fd = openSync(hostFiller, 'a');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe('a full data disk', () => {
  let d: Daemon;
  let mounted = false;
  /** A: running, serves the preview; B: stopped (a wake must be refused); C: due for idle stop while the disk is full. */
  let a: string;
  let b: string;
  let c: string;
  const note = `kept across the outage ${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160m,mode=0755', 'tmpfs', mnt]);
    mounted = true;
    mkdirSync(dataDir);
    const tag = randomBytes(4).toString('hex');
    // A Daemon whose data dir is on the small filesystem: `reuse` is how daemon.ts takes a given one.
    const where = { dataDir, instance: `t${tag}`, network: `sbx-test-${tag}`, runtime: defaultRuntime(), env: {}, gatewayPort: 0 } as unknown as Daemon;
    d = new Daemon({ reuse: where, env: { SANDBOXD_MIN_FREE_MB: String(WATERMARK_MB), SANDBOXD_IDLE_TICK_S: '1', SANDBOXD_RECONCILE_INTERVAL_S: '2' } });
    await d.start();
  });

  afterAll(async () => {
    try {
      await d?.cleanup();
    } finally {
      if (mounted) execFileSync('umount', ['-l', mnt]);
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('refuses writes with 503 capacity, keeps reads and the running preview, and does not restart', async () => {
    // Workspaces of 32 MiB, each reserved on the 160 MiB disk when it is made.
    const disk = { disk_mb: 32 };
    a = (await d.api('POST', '/v1/sandboxes', { name: 'disk-a', labels: { keep: 'me' }, resources: disk })).body.id;
    b = (await d.api('POST', '/v1/sandboxes', { name: 'disk-b', resources: disk })).body.id;
    expect((await d.api('PUT', `/v1/sandboxes/${a}/files`, { path: 'note.txt', content: note })).status).toBe(200);
    expect((await d.api('POST', `/v1/sandboxes/${b}/stop`)).status).toBe(200);
    expect((await d.gateway(host(a), '/index.html')).status).toBe(200);
    c = (await d.api('POST', '/v1/sandboxes', { name: 'disk-c', idle_timeout_s: 10, resources: disk })).body.id;
    expect((await d.api('POST', `/v1/sandboxes/${c}/keepalive`, { seconds: 10 })).status).toBe(200);
    const pid = d.proc.pid;

    // The tenant's attack: fill the disk from inside the sandbox, through its workspace. Its own quota
    // (issue #12) stops it first; the host still has room.
    const dd = await execIn(a, ['sh', '-c', 'dd if=/dev/zero of=/home/sandbox/fill bs=1048576 2>&1; echo exit=$?']);
    expect(dd.output).toMatch(/No space left on device/);
    expect(freeBytes()).toBeGreaterThan(WATERMARK_MB * MIB);
    // Something else fills the data disk (another process of the host, or workspaces over-committed).
    topUpFromHost();
    expect(freeBytes()).toBeLessThan(WATERMARK_MB * MIB);

    // Writes: 503 capacity, retryable, naming the data directory and what to do.
    const writes = [
      await d.api('POST', '/v1/sandboxes', { name: 'disk-new' }),
      await d.api('PUT', `/v1/sandboxes/${a}/files`, { path: 'more.txt', content: 'x'.repeat(10_000) }),
      await d.api('PUT', `/v1/sandboxes/${a}/files?path=raw.bin`, 'y'.repeat(10_000)),
      await d.api('POST', `/v1/sandboxes/${a}/stop`),
      await d.api('POST', `/v1/sandboxes/${b}/start`),
    ];
    for (const r of writes) {
      expect(r.status, r.text).toBe(503);
      expect(r.body.error.code).toBe('capacity');
      expect(r.body.error.retryable).toBe(true);
      expect(r.body.error.message).toContain(`free space in ${dataDir}`);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // A wake through the gateway is refused the same way, before anything is written.
    const wake = await d.gateway(host(b), '/index.html');
    expect(wake.status).toBe(503);
    expect(wake.headers['retry-after']).toBeDefined();

    // Reads keep working.
    expect((await d.api('GET', '/healthz')).status).toBe(200);
    const list = await d.api('GET', '/v1/sandboxes');
    expect(list.status).toBe(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining([a, b, c]));
    expect((await d.api('GET', `/v1/sandboxes/${a}`)).body).toMatchObject({ status: 'running', labels: { keep: 'me' } });
    expect((await d.api('GET', `/v1/sandboxes/${a}/files?path=note.txt&encoding=utf8`)).body.content).toBe(note);

    // The running preview keeps answering, request after request, over several activity-write windows.
    for (let i = 0; i < 30; i++) {
      const r = await d.gateway(host(a), '/index.html');
      expect(r.status, `preview request ${i}`).toBe(200);
      expect(r.body).toContain('hello from the sandboxed test image');
      await new Promise((res) => setTimeout(res, 120));
    }
    // The refused activity writes are dropped and counted, never failed requests. How many are refused is
    // SQLite's to say (uses are coalesced into one write a second, and one may fit in WAL pages it reuses).
    const dropped = async () => Number(/sandboxd_dropped_writes_total\{what="activity"\} (\d+)/.exec((await d.api('GET', '/metrics')).text)?.[1] ?? 0);
    expect(await eventually(async () => (await dropped()) >= 1, 5000, 100)).toBe(true);

    // /readyz says why, with the free bytes.
    const ready = await d.api('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.disk).toContain('below the 16.0 MiB watermark');
    expect(ready.body.checks.disk).toContain(dataDir);
    expect(ready.body.data_disk.free_bytes).toBeLessThan(WATERMARK_MB * MIB);

    // The idle reaper (a worker) finds C due. On the full disk its claim fails and it lives to try again; once
    // the daemon has given up its reserve file (4 MiB) the claim may fit and C stops. Either way it runs on.
    expect(await eventually(async () => /idle reaper pass failed/.test(d.output) || (await d.api('GET', `/v1/sandboxes/${c}`)).body.status === 'stopped', 30_000, 250)).toBe(true);

    expect(d.proc.pid).toBe(pid);
    expect(d.proc.exitCode).toBeNull();
    expect(d.output).not.toMatch(/unhandled|uncaught|failed to start/i);
  });

  it('boots again on the full disk and serves reads, with /readyz saying why', async () => {
    // The hard case: a daemon shut down cleanly while there was room leaves no WAL index (-shm), which
    // SQLite must create before it can even read. A tenant's app fills the disk while no daemon runs.
    await d.stop();
    rmSync(hostFiller);
    rmSync(join(dataDir, 'workspaces', a, 'fill'));
    // Close the database the way a last clean connection does (checkpoint, then -wal and -shm removed).
    const node = join(ROOT, 'node_modules/.bin/node');
    const closeCleanly = `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(process.argv[1]); db.exec('PRAGMA wal_checkpoint(TRUNCATE)'); db.close();`;
    execFileSync(node, ['--disable-warning=ExperimentalWarning', '-e', closeCleanly, join(dataDir, 'sandboxed.db')]);
    expect(existsSync(join(dataDir, 'sandboxed.db-shm'))).toBe(false);
    // The sandbox keeps running without its daemon, and fills the disk again.
    expect((await execIn(a, ['sh', '-c', 'dd if=/dev/zero of=/home/sandbox/fill bs=1048576 2>&1'])).output).toMatch(/No space left on device/);
    topUpFromHost();
    d = new Daemon({ reuse: d });
    await d.start();
    expect(d.output).toMatch(/gave up the reserve file/);
    expect((await d.api('GET', '/healthz')).status).toBe(200);
    const list = await d.api('GET', '/v1/sandboxes');
    expect(list.status).toBe(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining([a, b, c]));
    expect((await d.api('GET', `/v1/sandboxes/${a}/files?path=note.txt&encoding=utf8`)).body.content).toBe(note);
    expect((await d.gateway(host(a), '/index.html')).status).toBe(200);
    const ready = await d.api('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.disk).toContain('watermark');
    const create = await d.api('POST', '/v1/sandboxes', { name: 'disk-new' });
    expect(create.status).toBe(503);
    expect(create.body.error.code).toBe('capacity');
  });

  it('recovers by itself once space is freed: writes work and nothing from before is lost', async () => {
    const pid = d.proc.pid;
    rmSync(hostFiller, { force: true });
    rmSync(join(dataDir, 'workspaces', a, 'fill'), { force: true });
    expect(freeBytes()).toBeGreaterThan(WATERMARK_MB * MIB);

    expect(await eventually(async () => (await d.api('GET', '/readyz')).status === 200, 30_000, 250)).toBe(true);
    expect((await d.api('PUT', `/v1/sandboxes/${a}/files`, { path: 'more.txt', content: 'after' })).status).toBe(200);
    expect((await d.api('POST', `/v1/sandboxes/${b}/start`)).status).toBe(200);
    expect((await d.gateway(host(b), '/index.html')).status).toBe(200);
    expect((await d.api('POST', `/v1/sandboxes/${a}/stop`)).status).toBe(200);
    const created = await d.api('POST', '/v1/sandboxes', { name: 'disk-new', resources: { disk_mb: 32 } });
    expect(created.status, created.text).toBe(201);

    // Nothing lost: the rows and files from before the outage are all there.
    const rec = (await d.api('GET', `/v1/sandboxes/${a}`)).body;
    expect(rec).toMatchObject({ name: 'disk-a', status: 'stopped', labels: { keep: 'me' } });
    expect((await d.api('GET', `/v1/sandboxes/${a}/files?path=note.txt&encoding=utf8`)).body.content).toBe(note);
    expect((await d.api('GET', `/v1/sandboxes/${a}/files?path=index.html&encoding=utf8`)).body.content).toContain('hello from the sandboxed test image');
    const names = (await d.api('GET', '/v1/sandboxes')).body.data.map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(['disk-a', 'disk-b', 'disk-c', 'disk-new']));
    // The ballast given up at the full boot is written back once there is room.
    expect(await eventually(async () => existsSync(join(dataDir, '.sandboxd-reserve')), 20_000, 250)).toBe(true);
    // The reaper's failed pass was retried: C, idle all along, is stopped now.
    expect(await eventually(async () => (await d.api('GET', `/v1/sandboxes/${c}`)).body.status === 'stopped', 20_000, 250)).toBe(true);
    expect(d.proc.pid).toBe(pid);
  });
});

describe('recognising a refused write', () => {
  it('knows the shapes node:sqlite gives on Node and Deno, and file errors, and nothing else', () => {
    // As observed on a full tmpfs: Node's errors carry errcode/errstr; Deno's exec() errors only code and message.
    const refused = [
      { code: 'ERR_SQLITE_ERROR', errcode: 13, errstr: 'database or disk is full', message: 'database or disk is full' },
      { code: 'ERR_SQLITE_ERROR', errcode: 4874, errstr: 'disk I/O error', message: 'disk I/O error' },
      { code: 'ERR_SQLITE_ERROR', message: 'disk I/O error' },
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
      Object.assign(new Error('EDQUOT: disk quota exceeded, write'), { code: 'EDQUOT' }),
      new Error('database or disk is full'), // crossed a worker boundary: only the message is left
    ];
    const other = [
      { code: 'ERR_SQLITE_ERROR', errcode: 2067, message: 'UNIQUE constraint failed: sandboxes.name' },
      { code: 'ERR_SQLITE_ERROR', errcode: 5, message: 'database is locked' },
      Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' }),
      new Error('boom'), undefined, null, 'disk', 42,
    ];
    for (const e of refused) expect(isStorageFailure(e), JSON.stringify(e)).toBe(true);
    for (const e of other) expect(isStorageFailure(e), JSON.stringify(e)).toBe(false);
  });
});
