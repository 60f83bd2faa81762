import { open } from 'node:fs/promises';
import { DIR_FLAGS, ensureDirAt } from './fd-walk.ts';

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Says what to do when the daemon may not give files away. */
function ownerError(err: unknown, what: string, uid: number): unknown {
  if (codeOf(err) !== 'EPERM') return err;
  return new Error(`cannot give ${what} to uid ${uid}: the daemon must run as root (or with CAP_CHOWN) to own sandbox workspaces`);
}

/**
 * Makes each directory of `chain` exist below `rootPath`, one inside the next, opened by descriptor with
 * O_NOFOLLOW and given to uid:gid (by descriptor) when made here. A link or file planted at any level is
 * refused, never followed. Answers whether the first directory was made.
 */
export async function ensureChain(rootPath: string, chain: string[], uid: number, gid: number): Promise<boolean> {
  let dir = await open(rootPath, DIR_FLAGS);
  let first = false;
  try {
    for (const [i, name] of chain.entries()) {
      const next = await ensureDirAt(dir, name, 0o755, uid, gid).catch((err) => Promise.reject(ownerError(err, chain.slice(0, i + 1).join('/'), uid)));
      if (i === 0) first = next.created;
      await dir.close();
      dir = next.dir;
    }
    return first;
  } finally {
    await dir.close().catch(() => undefined);
  }
}
