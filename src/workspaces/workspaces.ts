import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTree } from './fd-walk.ts';
import { ensureChain } from './home-fs.ts';
import type { Logger } from '../log.ts';
import { WorkspaceVolumes } from './volume-set.ts';
import type { WorkspaceMount } from '../model/workspace.ts';
import type { DiskUsage } from '../model/sandbox.ts';

/** The host uid/gid that owns workspaces: SANDBOXD_SANDBOX_UID/GID, set once per thread by setSandboxOwner. */
export let SANDBOX_UID = 61000;
export let SANDBOX_GID = 61000;

/** Sets the workspace owner from the config; every thread calls it before touching a workspace. */
export function setSandboxOwner(uid: number, gid: number): void {
  SANDBOX_UID = uid;
  SANDBOX_GID = gid;
}

/** The directories under which each sandbox's home lives, one per id. */
export class Workspaces {
  readonly root: string;
  /** Each home is a size-limited ext4 image loop-mounted at its path (see volume-set.ts). */
  readonly volumes: WorkspaceVolumes;

  constructor(dataDir: string, log?: Logger) {
    this.root = join(dataDir, 'workspaces');
    this.volumes = new WorkspaceVolumes(this.root, log);
  }

  /** Host path of a sandbox's home (mounted at /home/sandbox). */
  dir(sandboxId: string): string {
    return join(this.root, sandboxId);
  }

  /** What the runtime mounts as the sandbox's home: its directory on this host. */
  mountOf(sandboxId: string): WorkspaceMount {
    return { kind: 'host-dir', path: this.dir(sandboxId) };
  }

  exists(sandboxId: string): boolean {
    return existsSync(this.dir(sandboxId));
  }

  /**
   * Makes sure the home is mounted (a new `disk.limitMb` image, or a plain directory converted when
   * `disk.convert`) and `workspace/app` exist and belong to the sandbox user; answers whether the home is new.
   */
  async ensure(sandboxId: string, disk: { limitMb: number; convert: boolean } = { limitMb: 10240, convert: false }): Promise<boolean> {
    // 0700: the sandbox reaches its home through the bind mount alone, never by walking host paths.
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const madeImage = await this.volumes.prepare(sandboxId, { ...disk, uid: SANDBOX_UID, gid: SANDBOX_GID });
    // A sandbox may have replaced `workspace` or `app` with links: each level is opened by descriptor and
    // never followed, and only what is made here changes owner (fchown).
    return (await ensureChain(this.root, [sandboxId, 'workspace', 'app'], SANDBOX_UID, SANDBOX_GID)) || madeImage;
  }

  /** Used and allowed MiB of the home; null while it is a plain directory (not yet converted) or unmounted. */
  diskUsage(sandboxId: string): Promise<DiskUsage | null> {
    return this.volumes.usage(sandboxId);
  }

  /** Deletes a sandbox's home for good. */
  async purge(sandboxId: string): Promise<void> {
    // Unmount first (throws while still mounted): nothing is deleted through a live mount.
    await this.volumes.unmountAll(sandboxId);
    // The home is ours but its contents are the sandbox's: removed by descriptor, no link followed.
    await removeTree(this.root, sandboxId, `workspace ${sandboxId}`);
    await this.volumes.removeImages(sandboxId);
  }
}

