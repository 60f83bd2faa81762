import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, type Logger } from '../log.ts';
import { convertDirectory, finishSwap, type ConvertPaths } from './convert.ts';
import { removeTree } from './fd-walk.ts';
import type { DiskUsage } from '../model/sandbox.ts';
import { isMountPoint, makeImage, mountImage, unmount, usage, usageSync } from './volumes.ts';

/** What a start or create asks of a workspace's volume. */
export interface VolumeRequest {
  /** Size of a new image, in MiB. */
  limitMb: number;
  /** Whether a plain-directory workspace may be converted now (only while no container uses it). */
  convert: boolean;
  /** Owner of a new image's root (the sandbox user). */
  uid: number;
  gid: number;
}

/** The per-workspace ext4 images under `<data>/workspaces`: `<id>.img`, loop-mounted at `<id>`. */
export class WorkspaceVolumes {
  readonly root: string;
  private log?: Logger;

  constructor(root: string, log?: Logger) {
    this.root = root;
    this.log = log;
  }

  /** The paths of one workspace's image, its mount point and a conversion's temporary pieces. */
  paths(id: string): ConvertPaths {
    return {
      dir: join(this.root, id), image: join(this.root, `${id}.img`), pending: join(this.root, `${id}.img.pending`),
      staging: join(this.root, `${id}.staging`), aside: join(this.root, `${id}.old`),
    };
  }

  /**
   * Makes the workspace's mount exist: a new image for a new workspace, a mount for an image that is not
   * mounted (after a reboot), a conversion for a plain directory when allowed. Answers whether it made a new
   * image. A failed conversion is logged and leaves the plain directory in use.
   */
  async prepare(id: string, req: VolumeRequest): Promise<boolean> {
    const p = this.paths(id);
    if (existsSync(p.image)) {
      await finishSwap(p);
      return false;
    }
    if (!existsSync(p.dir)) {
      await makeImage(p.image, req.limitMb, req.uid, req.gid);
      await mkdir(p.dir, { mode: 0o755 });
      await mountImage(p.image, p.dir).catch(async (err) => {
        await rm(p.image, { force: true });
        throw err;
      });
      return true;
    }
    if (req.convert && !(await isMountPoint(p.dir))) {
      const started = Date.now();
      try {
        await convertDirectory(p, req.limitMb);
        this.log?.info('workspace converted to a size-limited image', { sandbox: id, limit_mb: req.limitMb, ms: Date.now() - started });
      } catch (err) {
        this.log?.error('workspace conversion failed; the plain directory stays in use (no size limit) and the next start retries', { sandbox: id, error: errorMessage(err) });
      }
    }
    return false;
  }

  /** Unmounts the workspace (lazily if busy) and its conversion's staging mount; throws while either stays mounted. */
  async unmountAll(id: string): Promise<void> {
    const p = this.paths(id);
    await unmount(p.staging);
    await unmount(p.dir);
  }

  /** Deletes the image and a conversion's leftovers; call after `unmountAll` and the home's removal. */
  async removeImages(id: string): Promise<void> {
    const p = this.paths(id);
    await rmdir(p.staging).catch(() => undefined);
    await rm(p.pending, { force: true });
    await rm(p.image, { force: true });
    await removeTree(dirname(p.aside), basename(p.aside), 'the old workspace copy');
  }

  /** Used and allowed MiB of a mounted workspace; null for a plain directory or an unmounted one. */
  usage(id: string): Promise<DiskUsage | null> {
    const p = this.paths(id);
    return usage(p.image, p.dir).catch(() => null);
  }

  /** `usage` without awaiting, for a metrics scrape. */
  usageSync(id: string): DiskUsage | null {
    const p = this.paths(id);
    return usageSync(p.image, p.dir);
  }

  /**
   * Mounts every image that is not mounted (boot: a host reboot drops mounts, the images stay), and warns
   * when the images could together grow past the data disk's free space (sparse images over-commit).
   */
  async mountAll(): Promise<{ mounted: number; failed: number }> {
    let mounted = 0;
    let failed = 0;
    let growable = 0;
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.endsWith('.img')) continue;
      const id = name.slice(0, -4);
      const p = this.paths(id);
      const st = await stat(p.image).catch(() => null);
      if (st) growable += Math.max(0, st.size - st.blocks * 512);
      if (await isMountPoint(p.dir)) continue;
      try {
        await finishSwap(p);
        mounted++;
      } catch (err) {
        failed++;
        this.log?.error('cannot mount a workspace image; its sandbox cannot start until this is fixed', { sandbox: id, error: errorMessage(err) });
      }
    }
    const free = await statfs(this.root).then((f) => Number(f.bavail) * Number(f.bsize), () => null);
    if (free !== null && growable > free) {
      this.log?.warn('workspace limits are over-committed: full workspaces would need more than the data disk has free', {
        growable_mb: Math.round(growable / 2 ** 20), free_mb: Math.round(free / 2 ** 20),
      });
    }
    return { mounted, failed };
  }
}
