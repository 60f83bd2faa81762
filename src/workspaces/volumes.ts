import { execFile } from 'node:child_process';
import { statfsSync, statSync } from 'node:fs';
import { lstat, open, readdir, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DiskUsage } from '../model/sandbox.ts';

const MIB = 1024 * 1024;
const TOOL_TIMEOUT_MS = 60_000;

/** Runs a host tool (mkfs, mount, umount) and answers its output; a failure carries the tool's stderr. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: TOOL_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/** Whether `dir` is the root of a mount: its device differs from its parent's (our loop mounts always do). */
export async function isMountPoint(dir: string): Promise<boolean> {
  try {
    const [self, parent] = await Promise.all([stat(dir), stat(dirname(dir))]);
    return self.dev !== parent.dev;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Makes an ext4 image of `limitMb` MiB whose root belongs to uid:gid, its blocks reserved on the data disk
 * (fallocate: unwritten extents, no zeroes written). A sparse image would take its blocks only as it fills:
 * once anything filled the data disk, a workspace needing a new block (its journal's included) would get
 * I/O errors and turn read-only, whoever was at fault. Reserved, the data disk holds every workspace at its
 * limit, and a create that does not fit fails at once (ENOSPC: 503 capacity); mkfs must not discard them
 * (it would punch the reservation back out). Lazy inode-table and
 * journal init keep this to tens of milliseconds even at 10 GiB; no reserved blocks, so the tenant gets the
 * whole limit.
 */
export async function makeImage(image: string, limitMb: number, uid: number, gid: number): Promise<void> {
  const handle = await open(image, 'wx', 0o600);
  try {
    await handle.truncate(limitMb * MIB);
  } finally {
    await handle.close();
  }
  try {
    await reserve(image, limitMb);
    await run('mkfs.ext4', ['-F', '-q', '-m', '0', '-E', `nodiscard,lazy_itable_init=1,lazy_journal_init=1,root_owner=${uid}:${gid}`, image]);
  } catch (err) {
    await rm(image, { force: true });
    throw err;
  }
}

/** Reserves an image's blocks; a data disk without room fails as ENOSPC (a storage failure, answered 503). */
async function reserve(image: string, limitMb: number): Promise<void> {
  try {
    await run('fallocate', ['-l', String(limitMb * MIB), image]);
  } catch (err) {
    const message = (err as Error).message;
    if (/No space left/i.test(message)) throw Object.assign(new Error(`ENOSPC: the data disk has no room for a ${limitMb} MiB workspace`), { code: 'ENOSPC' });
    throw err;
  }
}

/**
 * Loop-mounts `image` at `dir` with nosuid,nodev (a sandbox can leave neither setuid binaries nor device
 * nodes for the host). `mount -o loop` sets autoclear, so the loop device goes when the last user unmounts.
 * A fresh filesystem's lost+found is removed: the home should hold only what the tenant put there.
 */
export async function mountImage(image: string, dir: string): Promise<void> {
  if (await isMountPoint(dir)) return;
  // The image may still be live on a loop device (a container holds a bind of it while the host's mount was
  // taken away). A second loop device would be a second filesystem over the same file, each blind to the
  // other's unwritten changes: mount the live device instead, which shares its one superblock.
  const live = (await run('losetup', ['-j', image]).catch(() => '')).split('\n')[0]?.split(':')[0]?.trim();
  if (live) await run('mount', ['-t', 'ext4', '-o', 'nosuid,nodev,noatime', live, dir]);
  else await run('mount', ['-t', 'ext4', '-o', 'loop,nosuid,nodev,noatime', image, dir]);
  // Only mkfs's own (root-owned) lost+found: a tenant's empty one of that name stays.
  const found = join(dir, 'lost+found');
  const st = await lstat(found).catch(() => null);
  if (st?.isDirectory() && st.uid === 0) await rmdir(found).catch(() => undefined);
}

/**
 * Unmounts `dir`; lazily when something still holds it (the kernel finishes once the last user lets go).
 * Throws when it is still mounted afterwards, so no caller deletes through a live mount.
 */
export async function unmount(dir: string): Promise<void> {
  if (!(await isMountPoint(dir))) return;
  try {
    await run('umount', [dir]);
  } catch {
    await run('umount', ['-l', dir]);
  }
  if (await isMountPoint(dir)) throw new Error(`${dir} is still mounted after umount -l`);
}

/** Usage of a mounted workspace: used blocks from statfs, the limit from the image's size. Null when not mounted. */
export async function usage(image: string, dir: string): Promise<DiskUsage | null> {
  if (!(await isMountPoint(dir))) return null;
  const [fs, img] = await Promise.all([statfs(dir), stat(image)]);
  // ext4 reports blocks net of its own metadata, so used counts only what the tenant wrote.
  const used = (Number(fs.blocks) - Number(fs.bfree)) * Number(fs.bsize);
  return { usedMb: Math.round(used / MIB), limitMb: Math.round(img.size / MIB) };
}

/** The same as `usage`, synchronously, for a metrics scrape (statfs of a mounted ext4 is cheap). Null when not mounted. */
export function usageSync(image: string, dir: string): DiskUsage | null {
  try {
    const self = statSync(dir);
    if (self.dev === statSync(dirname(dir)).dev) return null;
    const fs = statfsSync(dir);
    const used = (Number(fs.blocks) - Number(fs.bfree)) * Number(fs.bsize);
    return { usedMb: Math.round(used / MIB), limitMb: Math.round(statSync(image).size / MIB) };
  } catch {
    return null;
  }
}

/**
 * Whether a refused write hit a workspace's own limit rather than the data disk: ENOSPC while the data disk
 * still has room can only come from a workspace image (the one filesystem under it that fills on its own).
 */
export function isWorkspaceFull(err: unknown, dataDir: string): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && !/no space left on device/i.test(String((err as Error | undefined)?.message ?? ''))) return false;
  try {
    const fs = statfsSync(dataDir);
    return Number(fs.bavail) * Number(fs.bsize) > 64 * MIB;
  } catch {
    return false;
  }
}

/** Whether a directory has no entries (a missing one counts as empty). */
export async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}
