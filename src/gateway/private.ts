import type { IncomingMessage } from 'node:http';
import type { Authenticator } from '../auth/authenticator.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import { previewCookieName, withoutPreviewCookies } from './cookies.ts';
import { isTokenShaped, type PreviewTokens } from '../auth/preview-tokens.ts';

/** How a request to a preview may go on. */
export type PreviewAccess =
  | { allow: true }
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
    const valid = [...new Set(target.tokens.filter(isTokenShaped))].map((t) => ({ t, exp: tokens.verify(t, rec.id, rec.createdAt, port) })).find((c) => c.exp);
    if (!valid) return { allow: false, why: 'the preview token is invalid, expired, or for another sandbox' };
    const maxAge = Math.max(1, Math.floor((valid.exp! - Date.now()) / 1000));
    // Over TLS `__Host-`: Secure, Path=/ and no Domain, so no sibling preview can set or overwrite it.
    const cookie = `${previewCookieName(secure)}=${valid.t}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
    const location = `${sameOriginPath(target.pathname)}${target.rest.length ? `?${target.rest.join('&')}` : ''}`;
    return { allow: 'redirect', location, cookie };
  }
  if (cookieValues(req, previewCookieName(secure)).some((c) => tokens.verify(c, rec.id, rec.createdAt, port))) return { allow: true };
  if (req.headers.authorization && !auth.disabled) {
    try {
      const caller = auth.authenticate(req);
      if (caller.admin || caller.name === rec.owner) return { allow: true };
    } catch {
      // fall through to the refusal
    }
  }
  return { allow: false, why: 'this preview is private: open it with a link that carries a preview token' };
}

/**
 * A same-origin redirect target with exactly one leading `/`, whatever the client sent: browsers read `\`
 * as `/`, `//x` as another host, and resolve dot segments (`/.//evil.example` becomes `//evil.example`),
 * encoded ones (`%2e`) included. So: collapse, let the URL parser resolve what a browser would, collapse again.
 */
export function sameOriginPath(pathname: string): string {
  let path = `/${pathname.replace(/^[/\\]+/, '')}`;
  try {
    path = new URL(path, 'http://preview.invalid').pathname;
  } catch {
    path = '/';
  }
  return `/${path.replace(/^[/\\]+/, '')}`;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The target without `token` query parameters whose value is one of our API tokens (the path itself when there are none). */
function withoutApiTokenParams(path: string, auth: Authenticator): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const query = path.slice(q + 1);
  // A key that decodes to `token` is spelt with it literally or with a percent-escape: most queries stop here.
  if (!query.includes('token') && !query.includes('%')) return path;
  const parts = query.split('&');
  const kept = parts.filter((part) => {
    const eq = part.indexOf('=');
    if (eq < 0 || decode(part.slice(0, eq).replace(/\+/g, ' ')) !== 'token') return true;
    return !auth.isApiToken(decode(part.slice(eq + 1).replace(/\+/g, ' ')));
  });
  if (kept.length === parts.length) return path;
  return kept.length ? `${path.slice(0, q)}?${kept.join('&')}` : path.slice(0, q);
}

/**
 * Removes our credentials from every proxied request, public preview or private, and answers the target to
 * send on: the preview cookie (either name), an `Authorization: Bearer` carrying one of our API tokens (an
 * app's own Bearer tokens pass: apps may do their own auth), and `token` query parameters that are API
 * tokens. One pass over the raw headers, by name length first; nothing is copied unless something goes.
 */
export function stripCredentials(req: IncomingMessage, path: string, auth: Authenticator): string {
  const raw = req.rawHeaders;
  let kept: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    let next: string | undefined = value;
    if (name.length === 6 && name.toLowerCase() === 'cookie') next = withoutPreviewCookies(value) || undefined;
    else if (name.length === 13 && name.toLowerCase() === 'authorization') {
      const m = BEARER.exec(value);
      if (m && auth.isApiToken(m[1]!)) next = undefined;
    }
    if (next !== value && !kept) kept = raw.slice(0, i);
    if (kept && next !== undefined) kept.push(name, next);
  }
  if (kept) {
    // Node builds req.headers lazily from rawHeaders and their original count (a shorter array would make it
    // throw later): build it now, then bring it in step with what is left.
    const headers = req.headers;
    raw.splice(0, raw.length, ...kept);
    let authorization: string | undefined;
    const cookies: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name === 'authorization') authorization ??= raw[i + 1];
      else if (name === 'cookie') cookies.push(raw[i + 1]!);
    }
    if (authorization === undefined) delete headers.authorization;
    else headers.authorization = authorization;
    if (cookies.length) headers.cookie = cookies.join('; ');
    else delete headers.cookie;
  }
  return withoutApiTokenParams(path, auth);
}
