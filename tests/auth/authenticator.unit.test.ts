import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';

// Counts the constant-time comparisons the authenticator makes; the real function still decides.
const compared = vi.hoisted(() => ({ calls: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => (compared.calls++, real.timingSafeEqual(a, b)) };
});

const { Authenticator } = await import('../../src/auth/authenticator.ts');
const { loadConfig } = await import('../../src/config.ts');

const request = (authorization: string) => ({ headers: { authorization } }) as IncomingMessage;

describe('R8 token comparison', () => {
  it('compares a presented token with every configured secret in constant time, whichever one matches, and accepts only an exact match', () => {
    const auth = new Authenticator(loadConfig({ SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'a:first-secret,b:second-secret,c:third-secret:admin' }));
    for (const [token, caller] of [['first-secret', 'a'], ['third-secret', 'c'], ['nope', undefined], ['first-secre', undefined], ['first-secret-', undefined]] as const) {
      compared.calls = 0;
      const who = (() => {
        try {
          return auth.authenticate(request(`Bearer ${token}`)).name;
        } catch {
          return undefined;
        }
      })();
      expect(who, token).toBe(caller);
      // Every secret is compared (as equal-length digests), so timing says nothing about which matched or how closely.
      expect(compared.calls, token).toBe(3);
    }
  });
});
