import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

const UNEXPECTED = 'sandboxd_unexpected_errors_total';
const UNEXPECTED_HELP = 'Errors no handler expected, by where they were caught (each one answered its own request only).';

/** Logs an error that reached a handler's boundary, once, with its stack, and counts it in /metrics. */
export function reportUnexpected(log: Logger, metrics: Metrics | undefined, where: string, err: unknown, fields: Record<string, unknown> = {}): void {
  try {
    metrics?.inc(UNEXPECTED, UNEXPECTED_HELP, { where });
    log.error(`unexpected error in ${where}`, { ...fields, error: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
  } catch {
    // Reporting must never become a second failure.
  }
}

/**
 * The last line of defence: a rejection or exception that escaped every boundary is logged and counted, and
 * the daemon stays up for everyone else. Each one is a bug to fix where it was thrown; requests are kept alive
 * by their own handlers' boundaries, not by this.
 */
export function installLastResort(log: Logger, metrics: Metrics): void {
  process.on('unhandledRejection', (reason) => reportUnexpected(log, metrics, 'unhandled_rejection', reason));
  process.on('uncaughtException', (err) => reportUnexpected(log, metrics, 'uncaught_exception', err));
}
