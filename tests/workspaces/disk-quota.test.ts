import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, symlinkSync, linkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, execIn, startDaemon } from '../support/daemon.ts';
import { prng } from '../support/prng.ts';

const MIB = 1024 * 1024;

/** The mount options of a mount point, from the host's mountinfo; undefined when nothing is mounted there. */
function mountOptions(point: string): string[] | undefined {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === point);
  return line?.split(' ')[5]?.split(',');
}

/** path, type, mode, owner, size, mtime, and the link target or content hash of every entry below `root`. */
function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const head = `${path} ${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.push(`${head} -> ${readlinkSync(join(root, path))}`);
      else if (st.isDirectory()) {
        out.push(`${head} dir ${Math.floor(st.mtimeMs)}`);
        walk(path);
      } else out.push(`${head} ${st.size} ${Math.floor(st.mtimeMs)} ${createHash('sha256').update(readFileSync(join(root, path))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

describe('workspace disk quotas', () => {
  let d: Daemon;
  let small: string;
  let neighbour: string;
  let legacy: string;
  let tooBig: string;
  let ws: (id: string) => string;

  const create = async (body: object) => {
    const r = await d.api('POST', '/v1/sandboxes', body);
    expect(r.status, r.text).toBe(201);
    return r.body.id as string;
  };

  beforeAll(async () => {
    // The server's real default (the fixture lowers it for the rest of the suite).
    d = await startDaemon({ env: { SANDBOXD_DEFAULT_DISK_MB: '10240' } });
    ws = (id) => join(d.dataDir, 'workspaces', id);
    small = await create({ resources: { disk_mb: 64 } });
    neighbour = await create({});
    legacy = await create({});
    tooBig = await create({ resources: { disk_mb: 32 } });
  }, 120_000);

  afterAll(async () => {
    await d?.cleanup();
  });

  it('mounts each workspace as its own filesystem, nosuid and nodev on the host and inside the sandbox', async () => {
    for (const id of [small, neighbour]) {
      const opts = mountOptions(ws(id));
      expect(opts, `mountinfo of ${ws(id)}`).toBeDefined();
      expect(opts).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    }
    const inside = await execIn(small, ['cat', '/proc/mounts']);
    const home = inside.output.split('\n').find((l) => l.split(' ')[1] === '/home/sandbox');
    expect(home, inside.output).toBeDefined();
    expect(home!.split(' ')[2]).toBe('ext4');
    expect(home!.split(' ')[3]!.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
  });

  it('refuses a write past the limit with ENOSPC inside, leaves the host disk and the neighbour alone', async () => {
    const r = await execIn(small, ['sh', '-c', 'dd if=/dev/zero of=/home/sandbox/big bs=1M count=200 2>&1; echo "rc=$?"; sync']);
    expect(r.output).toMatch(/No space left on device/);
    expect(r.output).not.toMatch(/rc=0\b/);
    const size = Number((await execIn(small, ['stat', '-c', '%s', '/home/sandbox/big'])).output.trim());
    expect(size).toBeGreaterThan(32 * MIB);
    expect(size).toBeLessThanOrEqual(64 * MIB);
    // What the host disk gives this workspace is its image's blocks, and they never grow past its size (a drop
    // in the disk's free space would be no measure: the other test files write to the same disk meanwhile).
    const img = lstatSync(`${ws(small)}.img`);
    expect(img.size).toBe(64 * MIB);
    // Reserved up front; the host filesystem may add a block or two of its own bookkeeping.
    expect(img.blocks * 512).toBeLessThanOrEqual(65 * MIB);

    const n = await execIn(neighbour, ['sh', '-c', 'echo neighbour-ok > /home/sandbox/ok && cat /home/sandbox/ok']);
    expect(n).toEqual({ code: 0, output: 'neighbour-ok\n' });
    expect((await d.api('GET', '/healthz')).status).toBe(200);
    // A host-side write through the files API into the full workspace is the tenant's 507, not a data-disk outage.
    const put = await d.api('PUT', `/v1/sandboxes/${small}/files`, { path: 'more.bin', content: Buffer.alloc(4 * MIB).toString('base64'), encoding: 'base64' });
    expect(put.status, put.text).toBe(507);
    expect(put.body.error.code).toBe('workspace_full');
    expect(put.body.error.message).toMatch(/resources\.disk_mb/);
    expect((await d.api('GET', '/readyz')).status).toBe(200);
  });

  it('reports the usage in GET and /metrics', async () => {
    const r = await d.api('GET', `/v1/sandboxes/${small}`);
    expect(r.status).toBe(200);
    expect(r.body.resources.disk_mb).toBe(64);
    expect(r.body.disk.limit_mb).toBe(64);
    expect(r.body.disk.used_mb).toBeGreaterThan(48);
    expect(r.body.disk.used_mb).toBeLessThanOrEqual(64);
    const other = await d.api('GET', `/v1/sandboxes/${neighbour}`);
    expect(other.body.disk.limit_mb).toBe(10240);
    expect(other.body.disk.used_mb).toBeLessThan(16);
    const m = await d.api('GET', '/metrics');
    expect(m.text).toContain(`sandboxd_workspace_disk_limit_bytes{sandbox="${small}"} ${64 * MIB}`);
    const used = Number(new RegExp(`sandboxd_workspace_disk_used_bytes\\{sandbox="${small}"\\} (\\d+)`).exec(m.text)?.[1]);
    expect(used).toBeGreaterThan(48 * MIB);
  });

  it('frees space for the sandbox again once it deletes its own files', async () => {
    const r = await execIn(small, ['sh', '-c', 'rm /home/sandbox/big && echo again > /home/sandbox/after && cat /home/sandbox/after']);
    expect(r).toEqual({ code: 0, output: 'again\n' });
  });

  it('refuses a disk_mb above the server maximum, naming the field and the variable', async () => {
    const r = await d.api('POST', '/v1/sandboxes', { resources: { disk_mb: 10_000_000 } });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/resources\.disk_mb/);
    expect(r.text).toMatch(/SANDBOXD_MAX_DISK_MB/);
  });

  it('converts an older plain-directory workspace intact, and remounts images at boot', async () => {
    for (const id of [legacy, neighbour, tooBig]) expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    await d.stop();

    // What an older version left: a plain directory, no image. Varied content, modes, owners, links.
    const dir = ws(legacy);
    const { uid, gid } = lstatSync(dir);
    execFileSync('umount', [dir]);
    rmSync(`${dir}.img`);
    rmdirSync(dir);
    mkdirSync(dir, { mode: 0o755 });
    const rand = prng(12);
    mkdirSync(join(dir, 'workspace/app/src/deep/er'), { recursive: true });
    mkdirSync(join(dir, 'empty'), { mode: 0o700 });
    for (let i = 0; i < 12; i++) {
      const bytes = Buffer.alloc(Math.floor(rand() * 300_000), 0);
      for (let j = 0; j < bytes.length; j += 97) bytes[j] = Math.floor(rand() * 256);
      writeFileSync(join(dir, 'workspace/app/src', `f${i}.bin`), bytes);
    }
    writeFileSync(join(dir, 'workspace/app/src/deep/er/secret'), 'only me\n', { mode: 0o600 });
    chmodSync(join(dir, 'workspace/app/src/deep/er/secret'), 0o600);
    writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(join(dir, 'run.sh'), 0o750);
    execFileSync('chown', ['-hR', `${uid}:${gid}`, dir]);
    writeFileSync(join(dir, 'root-owned'), 'root\n');
    writeFileSync(join(dir, '.hidden'), 'dot\n');
    symlinkSync('/etc/passwd', join(dir, 'abs-link'));
    symlinkSync('workspace/app/src/f1.bin', join(dir, 'rel-link'));
    symlinkSync('nowhere/at/all', join(dir, 'dangling'));
    linkSync(join(dir, 'run.sh'), join(dir, 'hard-link'));
    utimesSync(join(dir, 'workspace/app/src/f3.bin'), new Date('2020-02-02T02:02:02Z'), new Date('2020-02-02T02:02:02Z'));
    utimesSync(join(dir, 'empty'), new Date('2021-01-01T00:00:00Z'), new Date('2021-01-01T00:00:00Z'));
    const want = describeTree(dir);

    // A plain directory holding more than its sandbox's limit cannot be converted: it must stay in use, intact.
    const big = ws(tooBig);
    execFileSync('umount', [big]);
    rmSync(`${big}.img`);
    const bigFile = Buffer.alloc(40 * MIB, 7);
    writeFileSync(join(big, 'large.bin'), bigFile);
    execFileSync('chown', ['-hR', `${uid}:${gid}`, big]);

    // A reboot drops mounts: the neighbour's image stays and must be mounted again at boot.
    execFileSync('umount', [ws(neighbour)]);
    expect(mountOptions(ws(neighbour))).toBeUndefined();

    await d.start();
    expect(mountOptions(ws(neighbour))).toBeDefined();
    expect(readFileSync(join(ws(neighbour), 'ok'), 'utf8')).toBe('neighbour-ok\n');
    // Still a plain directory until its next start.
    expect(mountOptions(dir)).toBeUndefined();
    expect((await d.api('GET', `/v1/sandboxes/${legacy}`)).body.disk).toBeNull();

    const s = await d.api('POST', `/v1/sandboxes/${legacy}/start`);
    expect(s.status, s.text).toBe(200);
    expect(mountOptions(dir)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(describeTree(dir)).toEqual(want);
    expect(lstatSync(join(dir, 'hard-link')).ino).toBe(lstatSync(join(dir, 'run.sh')).ino);
    expect(readdirSync(join(d.dataDir, 'workspaces')).filter((n) => n.startsWith(legacy)).sort()).toEqual([legacy, `${legacy}.img`]);
    const inside = await execIn(legacy, ['cat', '/home/sandbox/workspace/app/src/deep/er/secret']);
    expect(inside.output).toBe('only me\n');
    expect((await d.api('GET', `/v1/sandboxes/${legacy}`)).body.disk.limit_mb).toBe(10240);

    const b = await d.api('POST', `/v1/sandboxes/${tooBig}/start`);
    expect(b.status, b.text).toBe(200);
    expect(d.output).toMatch(/workspace conversion failed/);
    expect(mountOptions(big)).toBeUndefined();
    expect(readFileSync(join(big, 'large.bin')).equals(bigFile)).toBe(true);
    expect(readdirSync(join(d.dataDir, 'workspaces')).filter((n) => n.startsWith(tooBig))).toEqual([tooBig]);
    expect((await execIn(tooBig, ['stat', '-c', '%s', '/home/sandbox/large.bin'])).output.trim()).toBe(String(40 * MIB));
  }, 120_000);

  it('purge unmounts the workspace and deletes its image, leaving no loop device behind', async () => {
    const image = `${ws(small)}.img`;
    expect(execFileSync('losetup', ['-j', image], { encoding: 'utf8' })).toContain(image);
    const r = await d.api('DELETE', `/v1/sandboxes/${small}?purge=true`);
    expect(r.status, r.text).toBe(200);
    expect(mountOptions(ws(small))).toBeUndefined();
    expect(existsSync(ws(small))).toBe(false);
    expect(existsSync(image)).toBe(false);
    expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' })).not.toContain(small);
  });
});
