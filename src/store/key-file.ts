import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FILE_MODE } from './file-modes.ts';

/**
 * The text of a key kept in `<dataDir>/<name>`: 32 random bytes as hex, written once (mode 0600, never
 * over an existing file) at first use; every later boot reads the same key. Two daemons racing to make it
 * both read the one that won.
 */
export function keyFileText(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  try {
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: FILE_MODE, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}
