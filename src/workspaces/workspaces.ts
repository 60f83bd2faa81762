import { existsSync } from 'node:fs';
import { chown, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import { parseTar } from './tar.ts';

export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;

/** The directories under which each sandbox's home lives, one per id. */
export class Workspaces {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'workspaces');
  }

  /** Host path of a sandbox's home (mounted at /home/sandbox). */
  dir(sandboxId: string): string {
    return join(this.root, sandboxId);
  }

  exists(sandboxId: string): boolean {
    return existsSync(this.dir(sandboxId));
  }

  /** Makes sure the home and `workspace/app` exist and belong to the sandbox user; answers whether the home is new. */
  async ensure(sandboxId: string): Promise<boolean> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    const home = this.dir(sandboxId);
    const created = !this.exists(sandboxId);
    for (const dir of [home, join(home, 'workspace'), join(home, 'workspace', 'app')]) {
      if (existsSync(dir)) {
        // A sandbox may have replaced these with links; never chown through one.
        if (!(await lstat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
        continue;
      }
      await mkdir(dir, { mode: 0o755 });
      await chownToSandbox(dir);
    }
    return created;
  }

  /** Copies an image's skeleton (a tar whose first path component is the directory itself) into a new home. */
  async seed(sandboxId: string, archive: Buffer): Promise<number> {
    const home = this.dir(sandboxId);
    let written = 0;
    for (const entry of parseTar(archive)) {
      const rel = entry.path.split('/').slice(1).join('/');
      if (!rel) continue;
      const target = normalize(join(home, rel));
      // Skeletons come from our own images, but an image is still input: stay inside the home.
      if (!target.startsWith(home + sep) || rel.split('/').includes('..')) continue;
      if (existsSync(target)) continue;
      if (entry.type === 'dir') {
        await mkdir(target, { mode: entry.mode & 0o777 });
      } else if (entry.type === 'file') {
        await writeFile(target, entry.data, { mode: entry.mode & 0o777, flag: 'wx' });
      } else {
        continue;
      }
      await chownToSandbox(target);
      written++;
    }
    return written;
  }

  /** Deletes a sandbox's home for good. */
  async purge(sandboxId: string): Promise<void> {
    await rm(this.dir(sandboxId), { recursive: true, force: true });
  }
}

async function chownToSandbox(path: string): Promise<void> {
  try {
    await chown(path, SANDBOX_UID, SANDBOX_GID);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') {
      throw new Error(`cannot give ${path} to uid ${SANDBOX_UID}: the daemon must run as root (or with CAP_CHOWN) to own sandbox workspaces`);
    }
    throw err;
  }
}
