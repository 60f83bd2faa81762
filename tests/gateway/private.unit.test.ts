import { describe, expect, it } from 'vitest';
import { sameOriginPath } from '../../src/gateway/private.ts';

describe('the same-origin redirect target after a preview token is swapped for a cookie', () => {
  it('keeps an ordinary path as it is', () => {
    expect(sameOriginPath('/index.html')).toBe('/index.html');
    expect(sameOriginPath('/a/b/')).toBe('/a/b/');
    expect(sameOriginPath('/')).toBe('/');
    expect(sameOriginPath('')).toBe('/');
  });

  it.each([
    '//evil.example', '///evil.example', '/\\evil.example', '\\\\evil.example', '/.//evil.example', '/./\\evil.example',
    '/%2e//evil.example', '/%2E%2E//evil.example', '/a/..//evil.example', '/../../evil.example/', '/\t/evil.example', '/%5c%5cevil.example',
  ])('never answers a path a browser would read as another host: %j', (hostile) => {
    const path = sameOriginPath(hostile);
    expect(path.startsWith('/')).toBe(true);
    expect(path[1]).not.toBe('/');
    expect(path[1]).not.toBe('\\');
    // The check a browser makes: resolved against the preview origin, the target stays on it.
    expect(new URL(path, 'http://s-x-3000.preview.localhost').host).toBe('s-x-3000.preview.localhost');
  });

  it('answers a path for unicode, control characters and huge input, never throwing', () => {
    for (const odd of ['/é/😀', '/\u0000', '/%zz', `/${'a/'.repeat(50_000)}`, '/\r\nLocation: //evil']) {
      const path = sameOriginPath(odd);
      expect(path.startsWith('/') && !path.startsWith('//'), JSON.stringify(odd.slice(0, 20))).toBe(true);
      expect(path).not.toMatch(/[\r\n]/);
    }
  });
});
