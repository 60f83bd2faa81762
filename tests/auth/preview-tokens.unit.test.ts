import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { isTokenShaped, PreviewTokens } from '../../src/auth/preview-tokens.ts';

const SB = '01JABCDEFGHJKMNPQRSTVWXYZ0';
const OTHER = '01JABCDEFGHJKMNPQRSTVWXYZ1';
/** The sandbox's creation time (ms): part of what a token opens. */
const GEN = 1_733_000_000_000;
const tokens = new PreviewTokens(Buffer.from('k'.repeat(32)));
const dir = mkdtempSync(join(tmpdir(), 'sandboxed-preview-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.useRealTimers());

describe('private-preview tokens', () => {
  it('opens the sandbox it was minted for, on any port or only the one it names, until it expires', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const any = tokens.mint(SB, GEN, 60);
    expect(any.expiresAt).toBe(1_700_000_060_000);
    expect(tokens.verify(any.token, SB, GEN, 3000)).toBe(any.expiresAt);
    expect(tokens.verify(any.token, SB, GEN, 8080)).toBe(any.expiresAt);
    const one = tokens.mint(SB, GEN, 60, 3000);
    expect(tokens.verify(one.token, SB, GEN, 3000)).toBe(one.expiresAt);
    expect(tokens.verify(one.token, SB, GEN, 3001)).toBeUndefined();
    expect(tokens.verify(any.token, OTHER, GEN, 3000)).toBeUndefined();
    // The same id purged and created again is another sandbox: its older tokens do not open it.
    expect(tokens.verify(any.token, SB, GEN + 1, 3000)).toBeUndefined();
    vi.setSystemTime(1_700_000_059_999);
    expect(tokens.verify(any.token, SB, GEN, 3000)).toBe(any.expiresAt);
    vi.setSystemTime(1_700_000_060_000);
    expect(tokens.verify(any.token, SB, GEN, 3000)).toBeUndefined();
  });

  it('refuses a token signed with another key, or one with its claims or signature changed', () => {
    const { token } = tokens.mint(SB, GEN, 600);
    expect(new PreviewTokens(Buffer.from('j'.repeat(32))).verify(token, SB, GEN, 3000)).toBeUndefined();
    const [body, mac] = token.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = (c: object) => `${Buffer.from(JSON.stringify(c)).toString('base64url')}.${mac}`;
    expect(tokens.verify(forged({ ...claims, sid: OTHER }), OTHER, GEN, 3000)).toBeUndefined();
    expect(tokens.verify(forged({ ...claims, exp: claims.exp + 10_000 }), SB, GEN, 3000)).toBeUndefined();
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    expect(tokens.verify(`${body}.${flipped}`, SB, GEN, 3000)).toBeUndefined();
    expect(tokens.verify(`${body}.${mac.slice(0, -1)}`, SB, GEN, 3000)).toBeUndefined();
  });

  it.each([
    ['nothing', undefined], ['an empty string', ''], ['one part', 'abc'], ['three parts', 'a.b.c'],
    ['a cookie attribute riding along', 'a.b; Domain=preview.example.com'], ['CR/LF', 'a.b\r\nSet-Cookie: x=y'],
    ['unicode', 'ä.ö'], ['a NUL', 'a.\u0000'], ['padding', 'YQ==.Yg=='], ['more than 1,024 characters', `${'a'.repeat(1024)}.b`],
  ])('refuses %s, without throwing', (_what, token) => {
    expect(tokens.verify(token, SB, GEN, 3000)).toBeUndefined();
  });

  it('answers undefined, not an exception, for a genuinely signed body that is not JSON', () => {
    // The signature covers kid.body: a body of garbage signed with the right key still must not throw.
    const body = Buffer.from('not json {').toString('base64url');
    const sign = (tokens as unknown as { sign(b: string): string }).sign.bind(tokens);
    expect(tokens.verify(`${body}.${sign(body)}`, SB, GEN, 3000)).toBeUndefined();
  });

  it('says whether a string has the shape of a token, nothing more', () => {
    expect(isTokenShaped(tokens.mint(SB, GEN, 1).token)).toBe(true);
    expect(isTokenShaped('abc_-09.XYZ')).toBe(true);
    for (const s of ['', '.', 'a.', '.b', 'a.b.c', 'a b.c', 'a+b.c', 'a/b.c']) expect(isTokenShaped(s), s).toBe(false);
  });

  it('keeps a generated key in the data dir (mode 0600) and reuses it, so tokens survive a restart; a configured secret wins', () => {
    const first = PreviewTokens.load(undefined, dir);
    const file = join(dir, 'preview-token.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}$/);
    const { token } = first.mint(SB, GEN, 600);
    expect(PreviewTokens.load(undefined, dir).verify(token, SB, GEN, 3000)).toBeGreaterThan(Date.now());
    expect(PreviewTokens.load('s'.repeat(32), dir).verify(token, SB, GEN, 3000)).toBeUndefined();
  });

  it('refuses an empty or damaged key file instead of signing with a key everyone knows', () => {
    for (const bad of ['', '\n', 'short']) {
      const d = mkdtempSync(join(tmpdir(), 'sandboxed-preview-key-'));
      writeFileSync(join(d, 'preview-token.key'), bad, { mode: 0o600 });
      expect(() => PreviewTokens.load(undefined, d)).toThrow(/preview-token\.key is not 64 hex digits/);
      rmSync(d, { recursive: true, force: true });
    }
  });
});
