/**
 * Cookies at the preview gateway. Every preview host is a sibling under one preview domain, so a cookie with
 * `Domain=preview.<domain>` (or any parent) set by one sandbox's app would reach every other sandbox's
 * preview, and could shadow or overwrite their cookies. Apps' cookies are therefore made host-only, and the
 * gateway's own credential cookie is `__Host-` prefixed over TLS, which browsers refuse to let any other
 * host set or overwrite.
 */

export const PREVIEW_COOKIE = 'sandboxed_preview';
const HOST_PREVIEW_COOKIE = `__Host-${PREVIEW_COOKIE}`;

/** The preview cookie's name: `__Host-` prefixed when previews are served over TLS (PREVIEW_TLS=true). */
export const previewCookieName = (tls: boolean): string => (tls ? HOST_PREVIEW_COOKIE : PREVIEW_COOKIE);

/** True for either name of the gateway's own cookie (the app never sees it, nor may set it). */
const isPreviewCookieName = (name: string): boolean => name === PREVIEW_COOKIE || name === HOST_PREVIEW_COOKIE;

/** A Cookie header's value without the gateway's cookies (either name); the input itself when it has none. */
export function withoutPreviewCookies(value: string): string {
  // Both names contain the plain one: most Cookie headers are answered here without a split.
  if (!value.includes(PREVIEW_COOKIE)) return value;
  return value.split(';').map((c) => c.trim()).filter((c) => c && !isPreviewCookieName(c.slice(0, Math.max(0, c.indexOf('='))).trim())).join('; ');
}

/** A Domain attribute (with or without a value) anywhere after the name=value pair. */
const DOMAIN_ATTR = /;[ \t]*domain[ \t]*(=|;|$)/i;

/**
 * Makes the Set-Cookie headers of an app's response host-only: every Domain attribute is removed (for a
 * preview host nothing below it exists, so for the app's own host this changes nothing, and for a parent
 * it keeps the cookie from reaching sibling previews). A Set-Cookie naming the gateway's own cookie is
 * dropped. Works in place on [name, value] pairs; a response without Set-Cookie costs one length check per
 * header.
 */
export function hostOnlyCookies(headers: [string, string][]): void {
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h[0].length !== 10 || h[0].toLowerCase() !== 'set-cookie') continue;
    const value = h[1];
    const eq = value.indexOf('=');
    if (eq > 0 && isPreviewCookieName(value.slice(0, eq).trim())) {
      headers.splice(i--, 1);
      continue;
    }
    if (!DOMAIN_ATTR.test(value)) continue;
    h[1] = value.split(';').filter((attr, n) => n === 0 || !/^[ \t]*domain[ \t]*(=|$)/i.test(attr)).join(';');
  }
}
