import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApiToken, Config } from '../config.ts';
import { AppError } from '../errors.ts';

/** Who is calling: the tenant that owns what it creates, and whether it may see every tenant. */
export interface Caller {
  name: string;
  admin: boolean;
}

/** The tenant that owns sandboxes created while auth is disabled (local use). */
export const LOCAL_CALLER: Caller = { name: 'local', admin: true };

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks Bearer tokens in constant time: every configured secret is compared, whatever matches first. */
export class Authenticator {
  private tokens: { token: ApiToken; hash: Buffer }[];

  private config: Config;

  constructor(config: Config) {
    this.config = config;
    this.tokens = config.tokens.map((token) => ({ token, hash: digest(token.secret) }));
  }

  /** True when the API runs without auth (local use): API tokens then prove nothing. */
  get disabled(): boolean {
    return this.config.authDisabled;
  }

  /** The caller a request acts as; throws unauthorized when auth is on and no valid token is given. */
  authenticate(req: IncomingMessage): Caller {
    if (this.config.authDisabled) return LOCAL_CALLER;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) throw new AppError('unauthorized', header ? 'the Authorization header must be "Bearer <token>"' : 'missing Authorization: Bearer <token>');
    const presented = digest(m[1]!);
    let found: ApiToken | undefined;
    for (const { token, hash } of this.tokens) {
      if (timingSafeEqual(presented, hash) && !found) found = token;
    }
    if (!found) throw new AppError('unauthorized', 'the token is not valid');
    return { name: found.name, admin: found.admin };
  }
}
