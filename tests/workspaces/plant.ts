import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Things outside a workspace that hostile links point at: a directory of files, a file, an empty root-owned file. */
export interface Canary {
  dir: string;
  file: string;
  empty: string;
}

/** Plants a canary (root-owned, 0644) under `parent`. */
export function makeCanary(parent: string): Canary {
  const dir = join(parent, 'canary-dir');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a.txt'), 'canary a');
  writeFileSync(join(dir, 'sub', 'b.txt'), 'canary b');
  const file = join(parent, 'canary-file');
  writeFileSync(file, 'canary secret');
  const empty = join(parent, 'canary-empty');
  writeFileSync(empty, '');
  for (const p of [dir, join(dir, 'sub'), join(dir, 'a.txt'), join(dir, 'sub', 'b.txt'), file, empty]) chownSync(p, 0, 0);
  return { dir, file, empty };
}

/** A digest of names, kinds, owners, modes and bytes of everything at and below `paths` (never following a link). */
export function fingerprint(...paths: string[]): string {
  const h = createHash('sha256');
  const walk = (p: string) => {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return void h.update(`${p}:missing\n`);
    h.update(`${p}:${st.mode}:${st.uid}:${st.gid}:${st.size}\n`);
    if (st.isFile()) h.update(readFileSync(p));
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) walk(join(p, name));
  };
  for (const p of paths) walk(p);
  return h.digest('hex');
}

/** The kinds planted at each level, by name. */
export const PLANTED = ['ldir', 'lfile', 'lrel', 'hard', 'hard0', 'fifo', 'sock', 'chr', 'blk'];

/**
 * Plants, as root on the host, at each of `depth` levels below `dir` (dir, dir/d, dir/d/d, ...): links to the
 * canary directory and file (absolute and relative), hard links to the files of `hardTo` (a canary on the
 * same filesystem: a loop-mounted workspace can hold no hard link to anything outside it), a FIFO, a
 * socket and device nodes, plus a regular file `ok.txt`. Answers the level directories.
 */
export function plantHostile(dir: string, canary: Canary, depth: number, hardTo: Canary = canary): string[] {
  const levels: string[] = [];
  const special: string[] = [];
  let here = dir;
  for (let i = 0; i < depth; i++) {
    mkdirSync(here, { recursive: true });
    levels.push(here);
    symlinkSync(canary.dir, join(here, 'ldir'));
    symlinkSync(canary.file, join(here, 'lfile'));
    symlinkSync(relative(here, canary.dir), join(here, 'lrel'));
    linkSync(hardTo.file, join(here, 'hard'));
    linkSync(hardTo.empty, join(here, 'hard0'));
    writeFileSync(join(here, 'ok.txt'), `level ${i}`);
    special.push(here);
    here = join(here, 'd');
  }
  // FIFOs, sockets and device nodes (a char device like /dev/zero, a block device like a loop device), in one process.
  const py = [
    'import os, socket, stat, sys',
    'for d in sys.argv[1:]:',
    '    os.mkfifo(os.path.join(d, "fifo"))',
    '    socket.socket(socket.AF_UNIX).bind(os.path.join(d, "sock"))',
    '    os.mknod(os.path.join(d, "chr"), stat.S_IFCHR | 0o600, os.makedev(1, 5))',
    '    os.mknod(os.path.join(d, "blk"), stat.S_IFBLK | 0o600, os.makedev(7, 200))',
  ].join('\n');
  execFileSync('python3', ['-c', py, ...special]);
  return levels;
}


/** Names in a tar (ustar names only: enough for the short paths tests use). */
export function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    names.push(name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}
