import type { IncomingMessage } from 'node:http';
import type { Authenticator } from '../api/auth.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import { isTokenShaped, type PreviewTokens } from './preview-tokens.ts';

export const PREVIEW_COOKIE = 'sandboxed_preview';

/** How a request to a preview may go on. */
export type PreviewAccess =
  /** `viaApiToken`: the Authorization header was ours, and must not travel on to the app. */
  | { allow: true; viaApiToken?: boolean }
  /** A `?token=` was swapped for a cookie: send the browser to the same URL without it. */
  | { allow: 'redirect'; location: string; cookie: string }
  | { allow: false; why: string };

/** True when this port of the sandbox needs a token. */
export function isPrivate(rec: SandboxRecord, port: number): boolean {
  return (rec.portVisibility[String(port)] ?? rec.visibility) === 'private';
}

/** Percent-decoding that answers the input itself when it is malformed (never throws). */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Every distinct value of cookie `name` that has a token's shape (a browser may send several with one name,
 * and a sandbox app can set junk ones for the parent domain: none of them may hide a valid one). The cheap
 * shape check runs on each; only those that pass cost an HMAC, and the header's size (bounded by
 * SANDBOXD_GATEWAY_MAX_HEADER_BYTES) bounds how many there can be.
 */
function cookieValues(req: IncomingMessage, name: string): string[] {
  const out = new Set<string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (isTokenShaped(value)) out.add(value);
  }
  return [...out];
}

/** The target split into its path, the values of its `token` parameters, and the other parameters as sent. */
function splitTarget(path: string): { pathname: string; tokens: string[]; rest: string[] } {
  const q = path.indexOf('?');
  const pathname = q < 0 ? path : path.slice(0, q);
  const tokens: string[] = [];
  const rest: string[] = [];
  if (q >= 0) {
    for (const part of path.slice(q + 1).split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      const key = decode((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
      if (key === 'token') tokens.push(decode((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' ')));
      else rest.push(part);
    }
  }
  return { pathname, tokens, rest };
}

/**
 * Private previews open with a preview token (once as `?token=`, then as a cookie scoped to this exact
 * preview host, so sandbox A's cookie never reaches sandbox B) or with an API token of the owner or an admin.
 * `path` is the checked origin-form target; nothing here throws on what a client sent.
 */
export function previewAccess(req: IncomingMessage, path: string, rec: SandboxRecord, port: number, tokens: PreviewTokens, auth: Authenticator, secure: boolean): PreviewAccess {
  const target = splitTarget(path);
  if (target.tokens.length) {
    // Only a verified token (two base64url parts, nothing else) ever goes into the Set-Cookie below.
    const valid = [...new Set(target.tokens.filter(isTokenShaped))].map((t) => ({ t, exp: tokens.verify(t, rec.id, port) })).find((c) => c.exp);
    if (!valid) return { allow: false, why: 'the preview token is invalid, expired, or for another sandbox' };
    const maxAge = Math.max(1, Math.floor((valid.exp! - Date.now()) / 1000));
    const cookie = `${PREVIEW_COOKIE}=${valid.t}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
    // One leading slash only: `//host/x` would make the redirect leave this preview (an open redirect).
    const location = `/${target.pathname.replace(/^[/\\]+/, '')}${target.rest.length ? `?${target.rest.join('&')}` : ''}`;
    return { allow: 'redirect', location, cookie };
  }
  if (cookieValues(req, PREVIEW_COOKIE).some((c) => tokens.verify(c, rec.id, port))) return { allow: true };
  if (req.headers.authorization && !auth.disabled) {
    try {
      const caller = auth.authenticate(req);
      if (caller.admin || caller.name === rec.owner) return { allow: true, viaApiToken: true };
    } catch {
      // fall through to the refusal
    }
  }
  return { allow: false, why: 'this preview is private: open it with a link that carries a preview token' };
}

/** Removes what opened a private preview (our cookie; the API token) from the request before it reaches the sandbox. */
export function stripPreviewCredentials(req: IncomingMessage, viaApiToken: boolean): void {
  const raw = req.rawHeaders;
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'authorization' && viaApiToken) continue;
    if (name === 'cookie') {
      const rest = raw[i + 1]!.split(';').map((c) => c.trim()).filter((c) => c && c.slice(0, Math.max(0, c.indexOf('='))).trim() !== PREVIEW_COOKIE).join('; ');
      if (rest) kept.push(raw[i]!, rest);
      continue;
    }
    kept.push(raw[i]!, raw[i + 1]!);
  }
  raw.splice(0, raw.length, ...kept);
}
