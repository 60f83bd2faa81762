import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, type Logger } from '../log.ts';

/**
 * `<dataDir>/.sandboxed-data` says "this directory is sandboxed's, for this instance". uninstall.sh --data
 * deletes nothing in a directory without it (or with another instance's), so a mistyped
 * SANDBOXED_DATA_DIR can never cost an operator their files. install.sh writes the same two lines.
 */
export const MARKER_FILE = '.sandboxed-data';
/** Version of the marker's format (not of the daemon): uninstall.sh reads `instance=` whatever it is. */
export const MARKER_VERSION = 1;

/** The data dir belongs to another instance: booting on it would fight that daemon over its sandboxes. */
export class DataDirConflict extends Error {}

/** The instance named by a marker's text, or undefined when it names none. */
export function markerInstance(text: string): string | undefined {
  return /^instance=(.*)$/m.exec(text)?.[1]?.trim() || undefined;
}

/**
 * Writes the marker when it is missing (creating the data dir 0700 if needed). Throws DataDirConflict when
 * the marker names another instance. A marker that cannot be written (a full or read-only disk) is only
 * warned about: the daemon still serves, and uninstall refuses the dir until a later boot writes it.
 */
export function ensureDataMarker(dataDir: string, instance: string, log: Logger): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, MARKER_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const owner = markerInstance(text);
    if (owner !== undefined && owner !== instance) {
      throw new DataDirConflict(`SANDBOXED_DATA_DIR ${dataDir} belongs to instance '${owner}' (its ${MARKER_FILE} says so), not to SANDBOXD_INSTANCE '${instance}': give this instance its own data directory, or set SANDBOXD_INSTANCE=${owner}`);
    }
    if (owner !== undefined) return;
  }
  try {
    writeFileSync(path, `instance=${instance}\nversion=${MARKER_VERSION}\n`, { mode: 0o600 });
  } catch (err) {
    log.warn(`cannot write ${MARKER_FILE} in the data dir; uninstall.sh --data refuses the directory until a boot writes it`, { data_dir: dataDir, error: errorMessage(err) });
  }
}
