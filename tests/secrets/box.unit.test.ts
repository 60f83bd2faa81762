import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/secrets/box.ts';

const dirs: string[] = [];
const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'sandboxed-secretbox-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the secret box', () => {
  it('makes its key once, 0600, and opens with it after a restart what it sealed before', () => {
    const dir = dataDir();
    const sealed = SecretBox.load(dir).seal('alice', 'ANTHROPIC_API_KEY', 'sk-ant-real-key');
    const key = readFileSync(join(dir, 'secrets.key'), 'utf8');
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dir, 'secrets.key')).mode & 0o777).toBe(0o600);
    const again = SecretBox.load(dir);
    expect(readFileSync(join(dir, 'secrets.key'), 'utf8')).toBe(key);
    expect(again.open('alice', 'ANTHROPIC_API_KEY', sealed)).toBe('sk-ant-real-key');
    expect(sealed.includes(Buffer.from('sk-ant-real-key'))).toBe(false);
  });

  it('opens a value only as the owner and name it was sealed for, and not once a byte of it changed', () => {
    const box = SecretBox.load(dataDir());
    const sealed = box.seal('alice', 'KEY', 'v');
    expect(box.open('bob', 'KEY', sealed)).toBeUndefined();
    expect(box.open('alice', 'OTHER', sealed)).toBeUndefined();
    for (const at of [0, 5, 20, sealed.length - 1]) {
      const bent = Buffer.from(sealed);
      bent[at]! ^= 1;
      expect(box.open('alice', 'KEY', bent)).toBeUndefined();
    }
    expect(box.open('alice', 'KEY', sealed.subarray(0, 10))).toBeUndefined();
    expect(SecretBox.load(dataDir()).open('alice', 'KEY', sealed)).toBeUndefined(); // another data dir's key
  });

  it('seals the same value differently each time (a fresh nonce)', () => {
    const box = SecretBox.load(dataDir());
    expect(box.seal('a', 'K', 'same').equals(box.seal('a', 'K', 'same'))).toBe(false);
  });

  it('refuses a key file that is empty or not 64 hex digits, saying to restore it, and leaves no temporary file when it makes one', () => {
    for (const bad of ['', 'not a key', 'ab'.repeat(31)]) {
      const dir = dataDir();
      writeFileSync(join(dir, 'secrets.key'), bad, { mode: 0o600 });
      expect(() => SecretBox.load(dir)).toThrow(/secrets\.key is not 64 hex digits: restore it from a backup/);
    }
    const fresh = dataDir();
    SecretBox.load(fresh);
    expect(readdirSync(fresh)).toEqual(['secrets.key']);
  });
});
