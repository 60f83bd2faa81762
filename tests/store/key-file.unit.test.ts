import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const MODULE = new URL('../../src/store/key-file.ts', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'sandboxed-key-race-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** One process making (or reading) the key in `dir` at the wall-clock time `at` (spinning until then, so racers start together): what it read, or its error. */
function maker(dir: string, at: number): Promise<string> {
  const script = `import { keyFileText } from ${JSON.stringify(MODULE)}; while (Date.now() < ${at}); try { process.stdout.write(keyFileText(${JSON.stringify(dir)}, 'k.key')); } catch (e) { process.stdout.write('ERR ' + e.message); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('exit', () => resolve(out));
  });
}

describe('a key file', () => {
  it('made by 6 processes at once, 10 times over: every one reads the same 64 hex digits, none an empty or partial key, and no temporary file is left', async () => {
    for (let round = 0; round < 10; round++) {
      const dir = mkdtempSync(join(base, 'round-'));
      const at = Date.now() + 500;
      const keys = await Promise.all(Array.from({ length: 6 }, () => maker(dir, at)));
      expect(keys[0], `round ${round}`).toMatch(/^[0-9a-f]{64}$/);
      expect(new Set(keys), `round ${round}`).toEqual(new Set([keys[0]]));
      expect(readdirSync(dir)).toEqual(['k.key']);
    }
  }, 120_000);
});
