/**
 * Every error a client can see: a stable code, its HTTP status, and whether retrying the same request
 * can succeed. Add a line here before throwing a new code anywhere.
 */
export const ERRORS = {
  invalid_request: { status: 400, retryable: false },
  unauthorized: { status: 401, retryable: false },
  // With auth off: a web page's Origin, a proxy in front (src/api/browser-guard.ts), a non-loopback Host (421).
  forbidden_origin: { status: 403, retryable: false },
  forbidden_forwarded: { status: 403, retryable: false },
  misdirected_host: { status: 421, retryable: false },
  /** A per-tenant quota (src/sandboxes/quotas.ts) would be exceeded; details name it, its limit and the use. */
  quota_exceeded: { status: 403, retryable: false },
  /** A route for the operator (an admin token), such as /metrics, which names every tenant's sandboxes. */
  admin_only: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  conflict: { status: 409, retryable: false },
  task_in_progress: { status: 409, retryable: true },
  too_large: { status: 413, retryable: false },
  /** The sandbox's own workspace is at its size limit (resources.disk_mb); the data disk is fine. */
  workspace_full: { status: 507, retryable: false },
  rate_limited: { status: 429, retryable: true },
  internal: { status: 500, retryable: true },
  sandbox_unavailable: { status: 502, retryable: true },
  /** Destroyed or in error: previews do not start it (src/gateway/wake.ts); only an authorized start does. */
  sandbox_down: { status: 503, retryable: false },
  gateway_timeout: { status: 504, retryable: true },
  capacity: { status: 503, retryable: true },
  not_ready: { status: 503, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error meant for the client: its message says what is wrong and what to do next. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  /** Sent as Retry-After: when the same request is worth trying again. */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, retryAfterS?: number) {
    super(message);
    this.code = code;
    this.details = details;
    this.retryAfterS = retryAfterS;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}

/** The error envelope every client sees, on every listener: `{error: {code, message, retryable, details?, request_id}}`. */
export function errorEnvelope(err: AppError, requestId: string): { error: Record<string, unknown> } {
  return { error: { code: err.code, message: err.message, retryable: err.retryable, ...(err.details ? { details: err.details } : {}), request_id: requestId } };
}
