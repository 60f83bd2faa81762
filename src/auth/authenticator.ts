import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApiToken, Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { AuthFailures, type AttemptContext, type FailureSinks } from './failures.ts';

/** Who is calling: the tenant that owns what it creates, and whether it may see every tenant. */
export interface Caller {
  name: string;
  admin: boolean;
}

/** The tenant that owns sandboxes created while auth is disabled (local use). */
export const LOCAL_CALLER: Caller = { name: 'local', admin: true };

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Secrets shorter than this are accepted (8 is the floor) but warned about at start: they can be guessed. */
const STRONG_SECRET_CHARS = 32;

/**
 * Checks Bearer tokens in constant time: every configured secret is compared, whatever matches first.
 * Built with `sinks` (the API's), failures are limited per client address (see AuthFailures): past
 * SANDBOXD_AUTH_FAILURES_PER_MIN in a minute, further failures get 429 until the minute is over. A valid
 * token is always accepted, also from a limited address: many clients can share one address (a reverse
 * proxy, a NAT), and refusing them all would hand a flood the power to lock every tenant out; guessing is
 * answered by long secrets, which the start-up warning asks for.
 */
export class Authenticator {
  private tokens: { token: ApiToken; hash: Buffer }[];

  private config: Config;
  private failures: AuthFailures | undefined;

  constructor(config: Config, sinks?: FailureSinks) {
    this.config = config;
    this.tokens = config.tokens.map((token) => ({ token, hash: digest(token.secret) }));
    if (!sinks || config.authDisabled) return;
    this.failures = new AuthFailures(config.caps.authFailuresPerMin, config.caps.authTrackedAddresses, sinks);
    for (const t of config.tokens) {
      if (t.secret.length < STRONG_SECRET_CHARS) {
        sinks.log.warn(`API token '${t.name}' has a secret shorter than ${STRONG_SECRET_CHARS} characters; it can be guessed: use a long random one (e.g. openssl rand -hex 32)`, { token: t.name, length: t.secret.length });
      }
    }
  }

  /** True when the API runs without auth (local use): API tokens then prove nothing. */
  get disabled(): boolean {
    return this.config.authDisabled;
  }

  /** True when `secret` is one of the configured API tokens (constant time: every one is compared); the gateway strips those. */
  isApiToken(secret: string): boolean {
    if (!this.tokens.length) return false;
    const presented = digest(secret);
    let found = false;
    for (const { hash } of this.tokens) found = timingSafeEqual(presented, hash) || found;
    return found;
  }

  /**
   * The caller a request acts as; throws unauthorized when auth is on and no valid token is given, or
   * rate_limited (with Retry-After) once the client's address has failed too often this minute.
   */
  authenticate(req: IncomingMessage, at: AttemptContext = { route: 'unknown', requestId: '' }): Caller {
    if (this.config.authDisabled) return LOCAL_CALLER;
    try {
      return this.check(req);
    } catch (err) {
      const retryAfterS = this.failures?.fail(req.socket?.remoteAddress, at);
      if (retryAfterS === undefined) throw err;
      throw new AppError('rate_limited', `too many failed authentications from this address (more than SANDBOXD_AUTH_FAILURES_PER_MIN=${this.config.caps.authFailuresPerMin} a minute); check the token, and retry after ${retryAfterS} s`, { cap: 'SANDBOXD_AUTH_FAILURES_PER_MIN', limit: this.config.caps.authFailuresPerMin }, retryAfterS);
    }
  }

  private check(req: IncomingMessage): Caller {
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
