import { describe, expect, it } from 'vitest';
import { hostOnlyCookies, PREVIEW_COOKIE, previewCookieName, withoutPreviewCookies } from '../../src/gateway/cookies.ts';

describe('cookies at the preview gateway', () => {
  it("strips the gateway's own cookie (either name) from what the app receives, keeping the app's cookies", () => {
    expect(previewCookieName(false)).toBe(PREVIEW_COOKIE);
    expect(previewCookieName(true)).toBe(`__Host-${PREVIEW_COOKIE}`);
    expect(withoutPreviewCookies(`a=1; ${PREVIEW_COOKIE}=tok; b=2; __Host-${PREVIEW_COOKIE}=tok2`)).toBe('a=1; b=2');
    expect(withoutPreviewCookies(`${PREVIEW_COOKIE}=tok`)).toBe('');
    // A cookie whose name only contains the gateway's is the app's.
    expect(withoutPreviewCookies(`my_${PREVIEW_COOKIE}=x; ${PREVIEW_COOKIE}_2=y`)).toBe(`my_${PREVIEW_COOKIE}=x; ${PREVIEW_COOKIE}_2=y`);
    const plain = 'session=abc; theme=dark';
    expect(withoutPreviewCookies(plain)).toBe(plain);
    expect(withoutPreviewCookies(`;;  ${PREVIEW_COOKIE} = x ;; é=😀`)).toBe('é=😀');
  });

  it("makes an app's Set-Cookie host-only, and drops any that would set the gateway's cookie", () => {
    const headers: [string, string][] = [
      ['Content-Type', 'text/html'],
      ['Set-Cookie', 'a=1; Domain=preview.example.com; Path=/; HttpOnly'],
      ['set-cookie', 'b=2;domain=.example.com;Secure'],
      ['SET-COOKIE', 'c=3; Domain; Path=/'],
      ['Set-Cookie', `${PREVIEW_COOKIE}=stolen; Path=/`],
      ['Set-Cookie', `__Host-${PREVIEW_COOKIE}=stolen; Secure; Path=/`],
      ['Set-Cookie', 'd=domain=value; Path=/'],
      ['X-Domain', 'a; Domain=x'],
    ];
    hostOnlyCookies(headers);
    expect(headers).toEqual([
      ['Content-Type', 'text/html'], ['Set-Cookie', 'a=1; Path=/; HttpOnly'], ['set-cookie', 'b=2;Secure'], ['SET-COOKIE', 'c=3; Path=/'],
      ['Set-Cookie', 'd=domain=value; Path=/'], ['X-Domain', 'a; Domain=x'],
    ]);
  });
});
