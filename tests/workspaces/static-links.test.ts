import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { defaultLimits, removeTree } from '../../src/workspaces/fd-walk.ts';
import { SANDBOX_UID, Workspaces } from '../../src/workspaces/workspaces.ts';
import { createSandbox, startDaemon, type Daemon } from '../support/daemon.ts';
import { ustarOf as tarOf } from '../support/tar.ts';
import { fingerprint, makeCanary, plantHostile, PLANTED, tarNames, type Canary } from './plant.ts';

describe('host-side workspace work on planted links and special files (module level, real files)', () => {
  let data: string;
  let canary: Canary;
  let ws: Workspaces;
  const outside = () => fingerprint(canary.dir, canary.file, canary.empty);

  beforeAll(() => {
    data = mkdtempSync(join(tmpdir(), 'sandboxd-links-'));
    canary = makeCanary(data);
    ws = new Workspaces(data);
  });
  afterAll(async () => {
    // ensure() loop-mounts an image: purge unmounts it before the directory goes.
    for (const id of ['P1', 'E1', 'S1', 'L1']) await ws.purge(id).catch(() => undefined);
    rmSync(data, { recursive: true, force: true });
  });

  /** A plain-directory home, as a workspace from before disk images (the case where a hard link can reach outside). */
  const legacyHome = (id: string) => {
    mkdirSync(join(ws.dir(id), 'workspace/app'), { recursive: true });
    return ws.dir(id);
  };

  it('purge removes a home holding links, hard links, FIFOs, sockets and devices at every depth, and nothing they point at', async () => {
    const levels = plantHostile(join(legacyHome('P1'), 'workspace/app/p'), canary, 4);
    expect(lstatSync(join(levels[3]!, 'chr')).isCharacterDevice()).toBe(true);
    expect(statSync(canary.file).nlink).toBe(5);
    const before = outside();
    await ws.purge('P1');
    expect(existsSync(ws.dir('P1'))).toBe(false);
    expect(outside()).toBe(before);
    expect(readFileSync(canary.file, 'utf8')).toBe('canary secret');
    expect(statSync(canary.file).nlink).toBe(1);
  });

  it('ensure refuses a workspace or app directory replaced by a link, making and chowning nothing through it', async () => {
    await ws.ensure('E1');
    const app = join(ws.dir('E1'), 'workspace/app');
    rmSync(app, { recursive: true });
    symlinkSync(canary.dir, app);
    const before = outside();
    await expect(ws.ensure('E1')).rejects.toThrow(/not a directory/);
    rmSync(join(ws.dir('E1'), 'workspace'), { recursive: true });
    symlinkSync(canary.dir, join(ws.dir('E1'), 'workspace'));
    await expect(ws.ensure('E1')).rejects.toThrow(/not a directory/);
    expect(existsSync(join(canary.dir, 'app'))).toBe(false);
    expect(outside()).toBe(before);
  });

  it('a recursive removal past its depth or its deadline stops with a clean error, leaving everything outside', async () => {
    const app = join(legacyHome('L1'), 'workspace/app');
    plantHostile(join(app, 'deep'), canary, 6);
    const before = outside();
    const depth = await removeTree(app, 'deep', 'deep', { ...defaultLimits(), depth: 3 }).catch((e) => e);
    expect(depth).toBeInstanceOf(AppError);
    expect([depth.code, depth.message]).toEqual(['too_large', expect.stringMatching(/more than 3 directories deep/)]);
    const late = await removeTree(app, 'deep', 'deep', { ...defaultLimits(), deadline: Date.now() - 1 }).catch((e) => e);
    expect([late.code, late.message]).toEqual(['too_large', expect.stringMatching(/took too long/)]);
    const many = await removeTree(app, 'deep', 'deep', { ...defaultLimits(), entries: 5 }).catch((e) => e);
    expect([many.code, many.message]).toEqual(['too_large', expect.stringMatching(/more than 5 entries/)]);
    expect(outside()).toBe(before);
    expect(await removeTree(app, 'deep', 'deep')).toBeGreaterThan(PLANTED.length);
    expect(existsSync(join(app, 'deep'))).toBe(false);
    expect(outside()).toBe(before);
  });
});

describe('files API on planted links, hard links, FIFOs, sockets and devices at every depth (stopped sandbox)', () => {
  let d: Daemon;
  let id: string;
  let canary: Canary;
  let shared: Canary;
  const app = (...p: string[]) => join(d.dataDir, 'workspaces', id, 'workspace/app', ...p);
  const outside = () => fingerprint(canary.dir, canary.file, canary.empty, shared.dir, shared.file, shared.empty);
  const raw = (method: string, path: string, body?: Buffer | string) => fetch(`${d.url}/v1/sandboxes/${id}${path}`, { method, ...(body !== undefined ? { body } : {}) });

  beforeAll(async () => {
    d = await startDaemon();
    id = await createSandbox(d);
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    canary = makeCanary(d.dataDir);
    // Hard links can only reach files on the workspace's own filesystem: root-owned ones outside the tree worked on.
    mkdirSync(join(d.dataDir, 'workspaces', id, '.root-only'));
    shared = makeCanary(join(d.dataDir, 'workspaces', id, '.root-only'));
    plantHostile(app('p'), canary, 3, shared);
  });
  afterAll(() => d?.cleanup());

  it('reads refuse FIFOs, sockets, devices and links at every depth; listings show them without following', async () => {
    for (const level of ['p', 'p/d', 'p/d/d']) {
      for (const name of ['fifo', 'sock', 'chr', 'blk', 'lfile', 'ldir', 'lrel']) {
        const r = await raw('GET', `/files?path=${level}/${name}`);
        expect(r.status, `${level}/${name}`).toBe(400);
      }
    }
    const listing = (await d.api('GET', `/v1/sandboxes/${id}/files?path=p&recursive=true`)).body;
    const types = Object.fromEntries(listing.entries.map((e: any) => [e.path, e.type]));
    expect(types).toMatchObject({ ldir: 'symlink', 'd/lrel': 'symlink', 'd/d/fifo': 'other', 'd/d/chr': 'other', 'd/hard': 'file' });
    expect(Object.keys(types).some((p) => p.includes('a.txt'))).toBe(false);
  });

  it('archive download leaves out links, FIFOs, sockets and devices at every depth and finishes', async () => {
    const r = await raw('GET', '/archive?path=p');
    expect(r.status).toBe(200);
    const names = tarNames(Buffer.from(await r.arrayBuffer()));
    expect(names).toEqual(expect.arrayContaining(['ok.txt', 'd/', 'd/ok.txt', 'd/d/ok.txt']));
    for (const n of names) expect(['ldir', 'lfile', 'lrel', 'fifo', 'sock', 'chr', 'blk', 'a.txt', 'b.txt'].includes(n.split('/').filter(Boolean).at(-1)!), n).toBe(false);
  });

  it('archive upload never writes through a link, never into a FIFO or device, and replaces a hard link instead of writing into it', async () => {
    const before = outside();
    for (const name of ['ldir/x.txt', 'd/lrel/x.txt', 'd/d/ldir/sub/x.txt', 'fifo', 'd/sock', 'd/d/chr', 'fifo/x.txt']) {
      expect((await raw('PUT', '/archive?path=p', tarOf([{ name, type: '0', content: 'pwned' }]))).status, name).toBe(400);
    }
    expect((await raw('PUT', '/archive?path=p/ldir', tarOf([{ name: 'x.txt', type: '0', content: 'pwned' }]))).status).toBe(400);
    expect(outside()).toBe(before);
    const r = await raw('PUT', '/archive?path=p', tarOf([{ name: 'hard', type: '0', content: 'mine' }, { name: 'd/d/hard0', type: '0', content: 'mine' }]));
    expect(r.status).toBe(200);
    expect(readFileSync(app('p/hard'), 'utf8')).toBe('mine');
    expect(outside()).toBe(before);
  });

  it('appending to a hard link is refused, so the file it shares changes neither bytes nor owner', async () => {
    const before = outside();
    expect((await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'p/d/hard0', content: 'pwned', append: true })).status).toBe(400);
    expect((await raw('PUT', '/files?path=p/d/hard&append=true', 'pwned')).status).toBe(400);
    expect((await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'p/fifo', content: 'pwned', append: true })).status).toBe(400);
    expect(outside()).toBe(before);
    expect([statSync(shared.empty).uid, statSync(shared.empty).size]).toEqual([0, 0]);
  });

  it('mkdir through a link, FIFO, socket or device at any depth is refused and makes nothing outside', async () => {
    const before = outside();
    for (const path of ['p/ldir/new', 'p/d/lrel/new', 'p/d/d/ldir/sub/new', 'p/fifo/new', 'p/d/sock/new', 'p/d/d/chr/new', 'p/blk', 'p/lfile']) {
      const r = await d.api('POST', `/v1/sandboxes/${id}/files/mkdir`, { path });
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
    }
    expect(existsSync(join(canary.dir, 'new')) || existsSync(join(canary.dir, 'sub', 'new'))).toBe(false);
    expect(outside()).toBe(before);
  });

  it('move renames links and special files themselves and refuses to move anything through a link', async () => {
    const before = outside();
    for (const [from, to] of [['p/ok.txt', 'p/ldir/ok.txt'], ['p/d/ok.txt', 'p/d/lrel/sub/ok.txt'], ['p/ldir/a.txt', 'p/stolen.txt'], ['p/d/d/lfile', 'p/d/d/chr/x']]) {
      const r = await d.api('POST', `/v1/sandboxes/${id}/files/move`, { from, to });
      expect(r.status, `${from} -> ${to}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${from} -> ${to}`).toBeLessThan(500);
    }
    for (const [from, to] of [['p/d/d/fifo', 'p/fifo2'], ['p/chr', 'p/chr2'], ['p/ldir', 'p/ldir2'], ['p/d/hard', 'p/hard2'], ['p/d/d', 'p/dd']]) {
      expect((await d.api('POST', `/v1/sandboxes/${id}/files/move`, { from, to })).status, `${from} -> ${to}`).toBe(200);
    }
    expect(lstatSync(app('p/ldir2')).isSymbolicLink()).toBe(true);
    expect(lstatSync(app('p/fifo2')).isFIFO()).toBe(true);
    expect(outside()).toBe(before);
  });

  it('deletes each kind on its own, and a whole planted tree recursively, removing nothing it points at', async () => {
    const before = outside();
    for (const path of ['p/fifo2', 'p/chr2', 'p/ldir2', 'p/hard2', 'p/d/sock', 'p/d/lrel', 'p/dd/blk']) {
      expect((await d.api('DELETE', `/v1/sandboxes/${id}/files?path=${path}`)).status, path).toBe(200);
      expect(lstatSync(app(path), { throwIfNoEntry: false }), path).toBeUndefined();
    }
    expect((await d.api('DELETE', `/v1/sandboxes/${id}/files?path=p&recursive=true`)).status).toBe(200);
    expect(existsSync(app('p'))).toBe(false);
    expect(outside()).toBe(before);
    expect(statSync(shared.file).nlink).toBe(1);
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('stopped');
  });
});
