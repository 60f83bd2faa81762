import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { removeTree } from './fd-walk.ts';
import { isMountPoint, makeImage, mountImage, run, unmount } from './volumes.ts';

/** Where one workspace's pieces live while it is converted from a plain directory to an image. */
export interface ConvertPaths {
  dir: string;
  image: string;
  /** The image while it is being filled; renamed to `image` only once verified (the commit point). */
  pending: string;
  /** Where the filled image is mounted for the copy. */
  staging: string;
  /** Where the old directory is moved before it is deleted. */
  aside: string;
}

/**
 * Moves a plain-directory workspace into a new image of `limitMb` MiB without losing a byte: copy with
 * owners, modes, times and links as links (`cp -a`, never following links), verify every entry (type, mode,
 * owner, size, link target, content hash), then swap. Until the verified image is renamed into place the old
 * directory is untouched, so any failure leaves it in use.
 */
export async function convertDirectory(p: ConvertPaths, limitMb: number): Promise<void> {
  const root = await lstat(p.dir);
  if (!root.isDirectory()) throw new Error(`${p.dir} is not a directory`);
  await discardPending(p);
  await makeImage(p.pending, limitMb, root.uid, root.gid);
  try {
    await mkdir(p.staging, { mode: 0o700 });
    await mountImage(p.pending, p.staging);
    // `dir/.` copies the contents and the root's own mode, owner and times onto the new root.
    await run('cp', ['-a', '--no-dereference', `${p.dir}/.`, `${p.staging}/`]);
    const [want, got] = await Promise.all([describeTree(p.dir), describeTree(p.staging)]);
    const diff = firstDifference(want, got);
    if (diff) throw new Error(`the copy differs from the original at ${diff}`);
    await unmount(p.staging);
    await rmdir(p.staging);
  } catch (err) {
    await discardPending(p).catch(() => undefined);
    throw err;
  }
  await rename(p.pending, p.image);
  await finishSwap(p);
}

/**
 * Completes a conversion whose verified image is in place: the plain directory goes aside, the image is
 * mounted at its path, then the old copy is deleted. Also what a restart runs after a crash mid-swap.
 */
export async function finishSwap(p: ConvertPaths): Promise<void> {
  if (!(await isMountPoint(p.dir))) {
    await lstat(p.dir).then(() => rename(p.dir, p.aside), (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await mkdir(p.dir, { mode: 0o755 });
    await mountImage(p.image, p.dir);
  }
  // The old copy's contents were the sandbox's: removed by descriptor, never through a link.
  await removeTree(dirname(p.aside), basename(p.aside), 'the old workspace copy');
}

/** Removes what an interrupted conversion left: its staging mount and the unverified image. */
async function discardPending(p: ConvertPaths): Promise<void> {
  await unmount(p.staging);
  await rmdir(p.staging).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await rm(p.pending, { force: true });
}

/** One line per entry, sorted: path, type, mode, owner, size, and the link target or content hash. */
async function describeTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full);
      const head = `${path} ${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.push(`${head} -> ${await readlink(full)}`);
      else if (st.isFile()) out.push(`${head} ${st.size} ${await hashFile(full)}`);
      else if (st.isDirectory()) {
        out.push(`${head} dir`);
        await walk(path);
      } else out.push(`${head} special ${st.rdev}`);
    }
  };
  const top = await lstat(root);
  out.push(`. ${top.mode.toString(8)} ${top.uid}:${top.gid}`);
  await walk('');
  return out;
}

function firstDifference(want: string[], got: string[]): string | null {
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    if (want[i] !== got[i]) return (want[i] ?? got[i])!.split(' ')[0]!;
  }
  return null;
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}
