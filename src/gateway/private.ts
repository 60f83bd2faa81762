import type { IncomingMessage } from 'node:http';
import type { Authenticator } from '../api/auth.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { PreviewTokens } from './preview-tokens.ts';

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

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Private previews open with a preview token (once as `?token=`, then as a cookie scoped to this exact
 * preview host, so sandbox A's cookie never reaches sandbox B) or with an API token of the owner or an admin.
 */
export function previewAccess(req: IncomingMessage, rec: SandboxRecord, port: number, tokens: PreviewTokens, auth: Authenticator, secure: boolean): PreviewAccess {
  const url = new URL(req.url ?? '/', 'http://preview');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null) {
    const exp = tokens.verify(fromQuery, rec.id, port);
    if (!exp) return { allow: false, why: 'the preview token is invalid, expired, or for another sandbox' };
    url.searchParams.delete('token');
    const maxAge = Math.max(1, Math.floor((exp - Date.now()) / 1000));
    const cookie = `${PREVIEW_COOKIE}=${fromQuery}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
    return { allow: 'redirect', location: `${url.pathname}${url.search}`, cookie };
  }
  if (tokens.verify(cookieValue(req, PREVIEW_COOKIE), rec.id, port)) return { allow: true };
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
      const rest = raw[i + 1]!.split(';').map((c) => c.trim()).filter((c) => c && !c.startsWith(`${PREVIEW_COOKIE}=`)).join('; ');
      if (rest) kept.push(raw[i]!, rest);
      continue;
    }
    kept.push(raw[i]!, raw[i + 1]!);
  }
  raw.splice(0, raw.length, ...kept);
}
