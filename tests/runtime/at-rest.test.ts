import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, docker, execIn, SANDBOX_UID, startDaemon, TEST_IMAGE } from '../support/daemon.ts';

const mode = (p: string) => lstatSync(p).mode & 0o7777;

/**
 * A static ELF executable of a few bytes that exits with its effective uid's low byte: 0 when a setuid-root
 * bit took effect, SANDBOX_UID & 0xff when it did not. (busybox drops setuid by itself, so it proves nothing.)
 */
function euidProbe(): Buffer {
  const code = process.arch === 'x64'
    // mov eax, 107 (geteuid); syscall; mov edi, eax; mov eax, 60 (exit); syscall
    ? Buffer.from([0xb8, 107, 0, 0, 0, 0x0f, 0x05, 0x89, 0xc7, 0xb8, 60, 0, 0, 0, 0x0f, 0x05])
    : process.arch === 'arm64'
      // mov x8, #175 (geteuid); svc 0; mov x8, #93 (exit; x0 already holds the euid); svc 0
      ? Buffer.from([0xe8, 0x15, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4])
      : undefined;
  if (!code) throw new Error(`the euid probe has no machine code for ${process.arch}; add it here`);
  const base = 0x400000;
  const h = Buffer.alloc(120);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(process.arch === 'x64' ? 0x3e : 0xb7, 18);
  h.writeUInt32LE(1, 20);
  h.writeBigUInt64LE(BigInt(base + 120), 24); // entry: right after the headers
  h.writeBigUInt64LE(64n, 32); // program headers follow the ELF header
  h.writeUInt16LE(64, 52);
  h.writeUInt16LE(56, 54);
  h.writeUInt16LE(1, 56);
  h.writeUInt32LE(1, 64); // PT_LOAD
  h.writeUInt32LE(5, 68); // R+X
  h.writeBigUInt64LE(BigInt(base), 80);
  h.writeBigUInt64LE(BigInt(base), 88);
  h.writeBigUInt64LE(BigInt(120 + code.length), 96);
  h.writeBigUInt64LE(BigInt(120 + code.length), 104);
  h.writeBigUInt64LE(0x1000n, 112);
  return Buffer.concat([h, code]);
}

/** The per-mount options of the mount holding `path`, read from this (the host's) mountinfo. */
function hostMountOptions(path: string): string[] {
  const real = realpathSync(path);
  let best: { point: string; options: string[] } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const point = f[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!point || !f[5]) continue;
    const inside = point === '/' || real === point || real.startsWith(`${point}/`);
    if (inside && (!best || point.length >= best.point.length)) best = { point, options: f[5].split(',') };
  }
  return best?.options ?? [];
}

/** Gives every entry of a tree (links themselves, never followed) to uid/gid 1000: a workspace from before the upgrade. */
function chownTreeTo1000(dir: string): void {
  execFileSync('chown', ['-R', '-P', '-h', '1000:1000', '--', dir]);
}

describe('files at rest and the sandbox uid', () => {
  let d: Daemon;
  let outside: string;
  beforeAll(async () => {
    d = await startDaemon();
    outside = mkdtempSync(join(tmpdir(), 'sandboxd-outside-'));
  });
  afterAll(async () => {
    await d?.cleanup();
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  const create = async () => {
    const r = await d.api('POST', '/v1/sandboxes', {});
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const home = (id: string) => join(d.dataDir, 'workspaces', id);

  it('boots with a 0700 data dir and 0600 database, WAL, SHM and preview key, read from the host', async () => {
    await create();
    expect(mode(d.dataDir)).toBe(0o700);
    expect(mode(join(d.dataDir, 'workspaces'))).toBe(0o700);
    for (const f of ['sandboxed.db', 'sandboxed.db-wal', 'sandboxed.db-shm', 'preview-token.key', 'secrets.key']) {
      const p = join(d.dataDir, f);
      expect(existsSync(p), f).toBe(true);
      expect([f, mode(p), statSync(p).uid]).toEqual([f, 0o600, 0]);
    }
  });

  it('runs sandboxes as the configured uid, not 1000, and gives it their files on the host', async () => {
    const id = await create();
    expect(SANDBOX_UID).not.toBe(1000);
    expect((await execIn(id, ['id', '-u'])).output.trim()).toBe(String(SANDBOX_UID));
    expect((await execIn(id, ['id', '-g'])).output.trim()).toBe(String(SANDBOX_UID));
    expect((await execIn(id, ['sh', '-c', 'echo made-inside > /home/sandbox/inside.txt && echo t > /tmp/t && stat -c %u /tmp/t'])).output.trim()).toBe(String(SANDBOX_UID));
    const st = statSync(join(home(id), 'inside.txt'));
    expect([st.uid, st.gid]).toEqual([SANDBOX_UID, SANDBOX_UID]);
    const written = await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'via-api.txt', content: 'x' });
    expect(written.status).toBeLessThan(300);
    expect(statSync(join(home(id), 'workspace/app/via-api.txt')).uid).toBe(SANDBOX_UID);
  });

  it('mounts workspaces nosuid,nodev, so a setuid-root binary placed in one runs without privilege', async () => {
    const id = await create();
    // As root on the host: a setuid-root copy of busybox in the workspace.
    const dir = join(home(id), 'workspace/app/suid');
    mkdirSync(dir);
    writeFileSync(join(dir, 'euid'), euidProbe());
    chmodSync(join(dir, 'euid'), 0o4755);
    expect(statSync(join(dir, 'euid')).uid).toBe(0);
    const mounts = (await execIn(id, ['cat', '/proc/mounts'])).output.split('\n').find((l) => l.split(' ')[1] === '/home/sandbox');
    expect(mounts?.split(' ')[3]?.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect((await execIn(id, ['/home/sandbox/workspace/app/suid/euid'])).code).toBe(SANDBOX_UID & 0xff);
    expect(hostMountOptions(dir)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    // Without no-new-privileges (a plain container as the sandbox uid binding the same home), the mount flag alone keeps it inert.
    const c = await docker.createContainer({
      Image: TEST_IMAGE, User: `${SANDBOX_UID}:${SANDBOX_UID}`, Cmd: ['/mnt/workspace/app/suid/euid'],
      HostConfig: { Binds: [`${home(id)}:/mnt`], NetworkMode: 'none' },
    });
    try {
      await c.start();
      expect((await c.wait()).StatusCode).toBe(SANDBOX_UID & 0xff);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('fixes group- and world-readable modes at boot and logs each file with its old mode', async () => {
    await d.stop();
    chmodSync(d.dataDir, 0o755);
    chmodSync(join(d.dataDir, 'sandboxed.db'), 0o644);
    chmodSync(join(d.dataDir, 'preview-token.key'), 0o644);
    chmodSync(join(d.dataDir, 'workspaces'), 0o711);
    d = await new Daemon({ reuse: d }).start(d.port);
    expect(mode(d.dataDir)).toBe(0o700);
    expect(mode(join(d.dataDir, 'sandboxed.db'))).toBe(0o600);
    expect(mode(join(d.dataDir, 'preview-token.key'))).toBe(0o600);
    expect(mode(join(d.dataDir, 'workspaces'))).toBe(0o700);
    const warned = d.output.split('\n').filter((l) => l.includes('"level":"warn"') && l.includes('readable by other users'));
    for (const [f, old] of [['sandboxed.db', '0644'], ['preview-token.key', '0644'], ['workspaces', '0711']] as const) {
      expect(warned.some((l) => l.includes(join(d.dataDir, f)) && l.includes(`"old_mode":"${old}"`)), f).toBe(true);
    }
    expect(warned.some((l) => l.includes(`"path":"${d.dataDir}"`) && l.includes('"old_mode":"0755"'))).toBe(true);
    // The fix sticks: the next boot has nothing to warn about.
    await d.stop();
    d = await new Daemon({ reuse: d }).start(d.port);
    expect(d.output).not.toContain('readable by other users');
  });

  it('converts a workspace owned by uid 1000 at start, content intact, without following a planted link', async () => {
    const id = await create();
    const ws = home(id);
    const payload = randomBytes(256 * 1024);
    mkdirSync(join(ws, 'workspace/app/deep/er'), { recursive: true });
    writeFileSync(join(ws, 'workspace/app/deep/er/data.bin'), payload);
    // Outside the workspace, owned by 1000 like the tree: following a link would hand it to the sandbox uid.
    const outsideFile = join(outside, 'secret.txt');
    writeFileSync(outsideFile, 'not yours');
    mkdirSync(join(outside, 'dir'));
    lchownSync(outsideFile, 1000, 1000);
    lchownSync(join(outside, 'dir'), 1000, 1000);
    symlinkSync(outsideFile, join(ws, 'workspace/app/link-to-file'));
    symlinkSync(join(outside, 'dir'), join(ws, 'workspace/app/deep/link-to-dir'));
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    chownTreeTo1000(ws);
    // Someone else's file in the tree stays theirs: only 1000-owned entries change.
    writeFileSync(join(ws, 'workspace/app/theirs.txt'), 'x');
    lchownSync(join(ws, 'workspace/app/theirs.txt'), 1234, 1234);
    // The old daemon's container ran as 1000: it is replaced, or it could not write its converted home.
    const old = await docker.getContainer(`s-${id}`).inspect();
    await docker.getContainer(`s-${id}`).remove({ force: true });
    await docker.createContainer({ name: `s-${id}`, Image: TEST_IMAGE, User: '1000:1000', Labels: old.Config.Labels, HostConfig: { Binds: [`${ws}:/home/sandbox`], NetworkMode: d.network } });

    await d.stop();
    d = await new Daemon({ reuse: d }).start(d.port);

    for (const rel of ['', 'workspace', 'workspace/app', 'workspace/app/deep/er/data.bin', 'workspace/app/link-to-file', 'workspace/app/deep/link-to-dir']) {
      const st = lstatSync(join(ws, rel));
      expect([rel, st.uid, st.gid]).toEqual([rel, SANDBOX_UID, SANDBOX_UID]);
    }
    expect(lstatSync(join(ws, 'workspace/app/link-to-file')).isSymbolicLink()).toBe(true);
    expect([statSync(outsideFile).uid, statSync(outsideFile).gid]).toEqual([1000, 1000]);
    expect(statSync(join(outside, 'dir')).uid).toBe(1000);
    expect(readFileSync(outsideFile, 'utf8')).toBe('not yours');
    expect(lstatSync(join(ws, 'workspace/app/theirs.txt')).uid).toBe(1234);
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(digest(readFileSync(join(ws, 'workspace/app/deep/er/data.bin')))).toBe(digest(payload));
    expect(d.output).toContain(`workspace ${id} was owned by uid 1000`);

    // The sandbox comes back as the new uid and can write its converted home.
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).body.status).toBe('running');
    expect((await docker.getContainer(`s-${id}`).inspect()).Config.User).toBe(`${SANDBOX_UID}:${SANDBOX_UID}`);
    expect((await execIn(id, ['sh', '-c', 'id -u && echo more >> /home/sandbox/workspace/app/deep/er/data.bin && echo ok'])).output.trim()).toBe(`${SANDBOX_UID}\nok`);

    // Idempotent: a second boot converts nothing.
    await d.stop();
    d = await new Daemon({ reuse: d }).start(d.port);
    expect(d.output).not.toContain('was owned by uid 1000');
  });
});
