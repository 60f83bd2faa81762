import { clientKey } from '../http/client-address.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { AuditEntry } from '../store/audit.ts';

const WINDOW_MS = 60_000;
/** Audit rows for failed authentication, over every address, per window: past it, one summary row per window. */
const ROWS_PER_WINDOW = 120;
/** How often pending counts are written out and quiet addresses forgotten. */
const SWEEP_MS = 15_000;

/** Where failed authentications are reported: the audit log, /metrics and the log. */
export interface FailureSinks {
  audit: { record(e: AuditEntry): void };
  metrics: Metrics;
  log: Logger;
}

/** What a failed attempt came from, for its audit row. */
export interface AttemptContext {
  route: string;
  requestId: string;
}

interface Tracked {
  windowStart: number;
  failures: number;
  lastRowAt: number;
  /** Failures not yet written to the audit log. */
  pending: number;
  lastRoute: string;
  lastSeen: number;
}

/**
 * Failed authentications per client address (an IPv6 client by its /64, which one host usually holds
 * whole): the first failures of a minute are answered 401, the rest 429 until the minute is over. Every
 * failure is counted in /metrics; the audit log gets at most one row per address per minute, carrying how
 * many failures it stands for, and at most ROWS_PER_WINDOW rows a minute in all (the rest are summed into
 * one summary row). At most `maxTracked` addresses are remembered (least recently seen forgotten first),
 * so neither memory nor the database grows with a flood.
 */
export class AuthFailures {
  private perWindow: number;
  private maxTracked: number;
  private sinks: FailureSinks;
  private byAddress = new Map<string, Tracked>();
  private rowsWindowStart = 0;
  private rowsInWindow = 0;
  /** Failures no per-address row carried (over budget, or their address forgotten), for the summary row. */
  private overflow = { failures: 0, addresses: new Set<string>() };
  private auditFailing = false;

  constructor(perWindow: number, maxTracked: number, sinks: FailureSinks) {
    this.perWindow = perWindow;
    this.maxTracked = maxTracked;
    this.sinks = sinks;
    const timer = setInterval(() => {
      try {
        this.sweep(Date.now());
      } catch (err) {
        sinks.log.warn('auth failure sweep failed', { error: errorMessage(err) });
      }
    }, SWEEP_MS);
    timer.unref();
  }

  /** How many client addresses are remembered now (bounded by maxTracked). */
  get tracked(): number {
    return this.byAddress.size;
  }

  /** Counts one failed attempt; answers the Retry-After seconds when the address is now over its limit. */
  fail(remote: string | undefined, at: AttemptContext, now = Date.now()): number | undefined {
    const key = clientKey(remote);
    let t = this.byAddress.get(key);
    if (t) this.byAddress.delete(key); // re-inserted below: Map order is least recently seen first
    else {
      if (this.byAddress.size >= this.maxTracked) this.forgetOldest();
      t = { windowStart: now, failures: 0, lastRowAt: 0, pending: 0, lastRoute: at.route, lastSeen: now };
    }
    this.byAddress.set(key, t);
    if (now - t.windowStart >= WINDOW_MS) (t.windowStart = now), (t.failures = 0);
    t.failures++;
    t.pending++;
    t.lastRoute = at.route;
    t.lastSeen = now;
    const limited = t.failures > this.perWindow;
    this.sinks.metrics.inc('sandboxd_auth_failures_total', 'Failed API authentications, by the answer they got (401, or 429 once the address is over SANDBOXD_AUTH_FAILURES_PER_MIN).', { answer: limited ? '429' : '401' });
    if (now - t.lastRowAt >= WINDOW_MS) this.writeRow(key, t, now, at.requestId);
    return limited ? Math.max(1, Math.ceil((t.windowStart + WINDOW_MS - now) / 1000)) : undefined;
  }

  /** Writes what is pending for addresses whose last row is a window old, the summary row, and forgets quiet addresses. */
  sweep(now: number): void {
    for (const [key, t] of this.byAddress) {
      if (t.pending > 0 && now - t.lastRowAt >= WINDOW_MS) this.writeRow(key, t, now, null);
      if (t.pending === 0 && now - t.lastSeen >= 2 * WINDOW_MS) this.byAddress.delete(key);
    }
    if (this.overflow.failures > 0 && now - this.rowsWindowStart >= WINDOW_MS) {
      this.record({ actor: 'anonymous', action: 'auth.failed', outcome: 'denied', detail: { remote: '*', failures: this.overflow.failures, addresses: this.overflow.addresses.size, summary: true } });
      this.overflow = { failures: 0, addresses: new Set() };
    }
  }

  private writeRow(key: string, t: Tracked, now: number, requestId: string | null): void {
    if (now - this.rowsWindowStart >= WINDOW_MS) (this.rowsWindowStart = now), (this.rowsInWindow = 0);
    if (this.rowsInWindow >= ROWS_PER_WINDOW) return this.spill(key, t);
    this.rowsInWindow++;
    this.record({ actor: 'anonymous', action: 'auth.failed', requestId, outcome: 'denied', detail: { route: t.lastRoute, remote: key, failures: t.pending, window_s: WINDOW_MS / 1000 } });
    t.pending = 0;
    t.lastRowAt = now;
  }

  private spill(key: string, t: Tracked): void {
    this.overflow.failures += t.pending;
    if (this.overflow.addresses.size < 100_000) this.overflow.addresses.add(key);
    t.pending = 0;
  }

  private forgetOldest(): void {
    const first = this.byAddress.entries().next();
    if (first.done) return;
    const [key, t] = first.value;
    this.spill(key, t);
    this.byAddress.delete(key);
  }

  /** An audit write that fails (a full disk) drops the row and is logged once, never failing the request. */
  private record(e: AuditEntry): void {
    try {
      this.sinks.audit.record(e);
      this.auditFailing = false;
    } catch (err) {
      this.sinks.metrics.inc('sandboxd_audit_dropped_total', 'Audit rows that could not be written.', { action: e.action });
      if (!this.auditFailing) this.sinks.log.warn('could not write an auth failure to the audit log', { error: errorMessage(err) });
      this.auditFailing = true;
    }
  }
}
