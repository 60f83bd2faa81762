import { describe, expect, it } from 'vitest';
import { decodeComponent, parseTarget } from '../../src/http/target.ts';

describe('request-target parsing', () => {
  it('parses origin-form, keeping a leading // as a path rather than a host', () => {
    expect(parseTarget('/v1/sandboxes?limit=5')?.pathname).toBe('/v1/sandboxes');
    expect(parseTarget('/v1/sandboxes?limit=5')?.searchParams.get('limit')).toBe('5');
    const sneaky = parseTarget('//evil.example/v1/sandboxes');
    expect(sneaky?.host).toBe('target');
    expect(sneaky?.pathname).toBe('//evil.example/v1/sandboxes');
  });

  it('parses absolute-form http and https, in any letter case', () => {
    expect(parseTarget('http://127.0.0.1:9090/v1/x')).toMatchObject({ host: '127.0.0.1:9090', pathname: '/v1/x' });
    expect(parseTarget('HTTPS://Example.com/a')).toMatchObject({ host: 'example.com', pathname: '/a' });
  });

  it.each([
    ['nothing', undefined], ['an empty target', ''], ['a relative path', 'v1/sandboxes'], ['an asterisk', '*'],
    ['another scheme', 'file:///etc/passwd'], ['a javascript: URL', 'javascript:alert(1)'], ['authority-form', 'example.com:443'],
    ['a malformed absolute-form', 'http://[::1/x'], ['an absolute-form without a host', 'http://'],
    ['a target past 16 KiB', `/${'a'.repeat(16_384)}`],
  ])('answers undefined for %s, never throwing', (_what, raw) => {
    expect(parseTarget(raw)).toBeUndefined();
  });

  it('answers a URL for a target of exactly 16 KiB, and for unicode and control characters (which the URL parser encodes)', () => {
    expect(parseTarget(`/${'a'.repeat(16_383)}`)?.pathname).toHaveLength(16_384);
    expect(parseTarget('/é/😀')?.pathname).toBe('/%C3%A9/%F0%9F%98%80');
    expect(parseTarget('/a\u0001b')?.pathname).toBe('/a%01b');
  });

  it('percent-decodes, answering undefined for malformed input instead of throwing', () => {
    expect(decodeComponent('alice%2Fweb')).toBe('alice/web');
    expect(decodeComponent('%F0%9F%98%80')).toBe('😀');
    expect(decodeComponent('plain')).toBe('plain');
    for (const bad of ['%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80']) expect(decodeComponent(bad), bad).toBeUndefined();
  });
});
