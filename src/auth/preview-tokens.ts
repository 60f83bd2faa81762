import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { keyFileText } from '../store/key-file.ts';

interface Claims {
  kid: string;
  aud: 'preview';
  sid: string;
  /** The sandbox's creation time: a purged id created again is another sandbox, which an old token does not open. */
  gen: number;
  port?: number;
  exp: number;
}

/** The only shape a preview token has: two base64url parts joined by one dot. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** True when `s` has the shape of a preview token (cheap: no HMAC); says nothing of whether it is genuine. */
export const isTokenShaped = (s: string): boolean => TOKEN_SHAPE.test(s);

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Signed, expiring tokens that open one sandbox's private previews (HMAC-SHA256 over the claims). */
export class PreviewTokens {
  private key: Buffer;
  private kid: string;

  constructor(key: Buffer) {
    this.key = key;
    this.kid = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  /** The key from SANDBOXD_PREVIEW_SECRET, else one generated once and kept in the data dir (mode 0600). */
  static load(secret: string | undefined, dataDir: string): PreviewTokens {
    if (secret) return new PreviewTokens(Buffer.from(secret));
    return new PreviewTokens(Buffer.from(keyFileText(dataDir, 'preview-token.key')));
  }

  /** A token for the sandbox `sandboxId` created at `createdAt` (ms), for `ttlS` seconds, for one port or all. */
  mint(sandboxId: string, createdAt: number, ttlS: number, port?: number): { token: string; expiresAt: number } {
    const exp = Math.floor(Date.now() / 1000) + ttlS;
    const claims: Claims = { kid: this.kid, aud: 'preview', sid: sandboxId, gen: createdAt, ...(port !== undefined ? { port } : {}), exp };
    const body = b64(JSON.stringify(claims));
    return { token: `${body}.${this.sign(body)}`, expiresAt: exp * 1000 };
  }

  /** The token's expiry (ms) when it is genuine, unexpired, and opens this port of this sandbox (id and creation time); else undefined. */
  verify(token: string | undefined, sandboxId: string, createdAt: number, port: number): number | undefined {
    // Exactly two base64url parts, refused before the HMAC: anything else (`<valid>.x; Domain=...`, CR/LF)
    // would otherwise ride along into the Set-Cookie built from it.
    if (!token || token.length > 1024 || !isTokenShaped(token)) return undefined;
    const [body, mac] = token.split('.') as [string, string];
    const expected = Buffer.from(this.sign(body));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Claims;
    } catch {
      return undefined;
    }
    const ok = claims.kid === this.kid && claims.aud === 'preview' && claims.sid === sandboxId && claims.gen === createdAt
      && (claims.port === undefined || claims.port === port) && claims.exp * 1000 > Date.now();
    return ok ? claims.exp * 1000 : undefined;
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(`${this.kid}.${body}`).digest('base64url');
  }
}
