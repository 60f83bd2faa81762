import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from '../log.ts';

const run = promisify(execFile);

/** One line of /proc/self/mountinfo: where a mount sits and its per-mount options (rw, nosuid, nodev, ...). */
export interface MountEntry {
  mountPoint: string;
  options: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/self/mountinfo text; lines it cannot read are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6 || !f[4] || !f[5]) continue;
    out.push({ mountPoint: unescape(f[4]), options: f[5].split(',') });
  }
  return out;
}

/** The mount `path` (a real path) lives on: the last-mounted entry whose mount point is it or its nearest ancestor. */
export function mountOf(path: string, entries: MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    const inside = e.mountPoint === '/' || path === e.mountPoint || path.startsWith(`${e.mountPoint}/`);
    // Later lines are mounted over earlier ones at the same point, so >= keeps the top-most.
    if (inside && (!best || e.mountPoint.length >= best.mountPoint.length)) best = e;
  }
  return best;
}

const safe = (m: MountEntry | undefined) => !!m && m.options.includes('nosuid') && m.options.includes('nodev');

/**
 * Makes sure the workspaces root sits on a `nosuid,nodev` mount, so every bind of a home into a container
 * carries both flags (a bind mount keeps its source mount's flags; the engine's bind options cannot set
 * them): a setuid binary or a device node left in a workspace is inert, in the sandbox and on the host.
 * A data disk already mounted nosuid,nodev needs nothing; otherwise the root is bound onto itself (with
 * what is mounted below it) and remounted with both flags. Throws when that is not possible (no root or
 * CAP_SYS_ADMIN). Answers whether a mount was made.
 */
export async function ensureNosuidRoot(root: string, log?: Logger): Promise<boolean> {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const real = realpathSync(root);
  const read = () => mountOf(real, parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')));
  const before = read();
  if (safe(before)) return false;
  try {
    if (before?.mountPoint !== real) await run('mount', ['--rbind', '--', real, real]);
    const keep = (read()?.options ?? ['rw']).filter((o) => o !== 'nosuid' && o !== 'nodev');
    await run('mount', ['-o', ['remount', 'bind', ...keep, 'nosuid', 'nodev'].join(','), '--', real]);
  } catch (err) {
    throw new Error(`cannot mount ${real} nosuid,nodev (it takes root or CAP_SYS_ADMIN, and mount(8)): ${(err as Error).message.trim()}; or mount the data disk with nosuid,nodev`);
  }
  if (!safe(read())) throw new Error(`${real} was remounted but is still not nosuid,nodev: mount the data disk with nosuid,nodev`);
  log?.info('workspaces mounted nosuid,nodev: a setuid binary or device node in a workspace is inert', { path: real });
  return true;
}
