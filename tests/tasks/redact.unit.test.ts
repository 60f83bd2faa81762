import { describe, expect, it } from 'vitest';
import { MAX_SECRET_BYTES, MAX_SECRETS, redactor, secretValues } from '../../src/tasks/redact.ts';

describe('secret redaction of task events', () => {
  it('takes values only of secret-looking names (any case), of at least 8 characters, deduplicated, longest first', () => {
    const env = {
      ANTHROPIC_API_KEY: 'sk-ant-0123456789', github_token: 'ghp_abcdefgh', DB_PASSWORD: 'hunter2!x', MY_PASSWD: 'hunter2!x',
      OAUTH_CREDENTIAL: 'cred-12345678', X_AUTH: 'authauth', CLIENT_SECRET: 'short', PATH: '/usr/bin:/bin:/usr/local/bin', HOME: '/home/sandbox',
    };
    expect(secretValues(env)).toEqual(['sk-ant-0123456789', 'cred-12345678', 'ghp_abcdefgh', 'hunter2!x', 'authauth']);
    expect(secretValues({})).toEqual([]);
  });

  it('cuts every occurrence of every secret out of every string of a nested value, and leaves other types and keys alone', () => {
    const clean = redactor({ API_KEY: 'sk-live-abcdef', TOKEN: 'tok-987654321' });
    const event = {
      type: 'message', text: 'key sk-live-abcdef and again sk-live-abcdef; token tok-987654321.', n: 42, ok: true, none: null,
      nested: [{ path: '/tmp/sk-live-abcdef/x', list: ['tok-987654321', 7] }], 'sk-live-abcdef': 'the key itself is not a value',
    };
    expect(clean(event)).toEqual({
      type: 'message', text: 'key [redacted] and again [redacted]; token [redacted].', n: 42, ok: true, none: null,
      nested: [{ path: '/tmp/[redacted]/x', list: ['[redacted]', 7] }], 'sk-live-abcdef': 'the key itself is not a value',
    });
    // The input is not changed in place: the event the caller holds stays as it was.
    expect(event.text).toContain('sk-live-abcdef');
  });

  it('cuts a secret that contains another one whole, not leaving the longer one\'s tail behind', () => {
    const clean = redactor({ SHORT_KEY: 'abcdefgh', LONG_KEY: 'abcdefgh-and-more-1234' });
    expect(clean('x abcdefgh-and-more-1234 y abcdefgh z')).toBe('x [redacted] y [redacted] z');
  });

  it('treats regex metacharacters, unicode and control characters in a secret as literal text', () => {
    const tricky = '.*+?^${}()|[]\\';
    const emoji = 'pässwörd-😀-秘密-123';
    const ctl = 'line1\nline2\r\u0000\u001b[31m';
    const clean = redactor({ A_SECRET: tricky, B_SECRET: emoji, C_SECRET: ctl });
    expect(clean(`<${tricky}> <${emoji}> <${ctl}>`)).toBe('<[redacted]> <[redacted]> <[redacted]>');
    // A pattern like `.*` would match everything if it were not escaped.
    expect(clean('plain text without secrets')).toBe('plain text without secrets');
  });

  it('with no secrets, answers its input unchanged (the same object)', () => {
    const clean = redactor({ PATH: '/bin', SHORT_KEY: 'abc' });
    const value = { text: 'anything' };
    expect(clean(value)).toBe(value);
  });

  it(`keeps at most ${MAX_SECRETS} secrets and ${MAX_SECRET_BYTES} bytes of them, the shortest first, so one huge value cannot crowd the rest out`, () => {
    const env: Record<string, string> = { HUGE_SECRET: 'h'.repeat(MAX_SECRET_BYTES) };
    for (let i = 0; i < MAX_SECRETS + 50; i++) env[`KEY_${i}`] = `secret-value-${String(i).padStart(4, '0')}`;
    const kept = secretValues(env);
    expect(kept).toHaveLength(MAX_SECRETS);
    expect(kept).not.toContain(env.HUGE_SECRET);
    expect(kept.reduce((n, s) => n + s.length, 0)).toBeLessThanOrEqual(MAX_SECRET_BYTES);
    // The kept ones are redacted, and the one pattern stays fast on large text.
    const clean = redactor(env);
    const text = `${'filler '.repeat(100_000)}${kept[0]}`;
    const t0 = performance.now();
    expect(clean(text).endsWith('[redacted]')).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
