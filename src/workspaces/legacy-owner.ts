import { execFile } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.ts';

const run = promisify(execFile);

/** The uid/gid that owned every workspace before SANDBOXD_SANDBOX_UID existed. */
export const LEGACY_UID = 1000;
export const LEGACY_GID = 1000;
/** Paths per chown run: a home with many top-level entries never hits the argument-size limit. */
const CHUNK = 256;

/**
 * Gives what the legacy uid (gid) owns under `paths` to `uid` (`gid`), and nothing else. GNU chown with
 * `-R -P -h` walks with fts by descriptor (openat, O_NOFOLLOW) and changes links themselves
 * (fchownat AT_SYMLINK_NOFOLLOW), so a link planted by a sandbox is never followed, at any depth;
 * `--from` leaves entries owned by anyone else alone.
 */
async function chownFromLegacy(paths: string[], uid: number, gid: number, recursive: boolean): Promise<void> {
  const flags = recursive ? ['-R', '-P', '-h'] : ['-h'];
  await run('chown', [...flags, `--from=${LEGACY_UID}`, String(uid), '--', ...paths]);
  await run('chown', [...flags, `--from=:${LEGACY_GID}`, `:${gid}`, '--', ...paths]);
}

/**
 * The upgrade from uid 1000: every home under `root` still owned by the legacy uid or gid has its
 * legacy-owned entries given to the configured owner, contents first and the home itself last, so a run
 * cut short leaves the home on the old owner and the next boot finishes it (a converted home is skipped:
 * idempotent). Answers the ids converted; each is logged.
 */
export async function convertLegacyOwners(root: string, uid: number, gid: number, log?: Logger): Promise<string[]> {
  if (uid === LEGACY_UID && gid === LEGACY_GID) return [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const converted: string[] = [];
  for (const name of names) {
    const home = join(root, name);
    const st = await lstat(home);
    if (!st.isDirectory() || (st.uid !== LEGACY_UID && st.gid !== LEGACY_GID)) continue;
    const started = Date.now();
    const entries = (await readdir(home)).map((e) => join(home, e));
    for (let i = 0; i < entries.length; i += CHUNK) await chownFromLegacy(entries.slice(i, i + CHUNK), uid, gid, true);
    await chownFromLegacy([home], uid, gid, false);
    converted.push(name);
    log?.info(`workspace ${name} was owned by uid ${LEGACY_UID}: its files now belong to ${uid}:${gid}`, { sandbox: name, uid, gid, ms: Date.now() - started });
  }
  return converted;
}
