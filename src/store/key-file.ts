import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FILE_MODE } from './file-modes.ts';

/**
 * The text of a key kept in `<dataDir>/<name>`: 32 random bytes as hex, made once at first use (mode
 * 0600) and read by every later boot. It is written whole to a temporary file, synced, and only then linked
 * into place, so no reader (another daemon racing to make it, a boot after a power cut) ever sees it empty
 * or half-written; of two racing makers, the first link wins and both read it. Anything but 64 hex digits
 * is refused: an empty key would be a key everyone knows.
 */
export function keyFileText(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', FILE_MODE);
    try {
      writeSync(fd, randomBytes(32).toString('hex'));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
    // The new name itself survives a power cut only once the directory is synced.
    const dir = openSync(dataDir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${file} is not 64 hex digits: restore it from a backup, or delete it to have a new key made (what the old one sealed or signed is then lost)`);
  return text;
}
