import { AppError } from '../errors.ts';

/** Retry-After sent while memory is short: about two pressure ticks. */
const RETRY_AFTER_S = 10;

/** The main thread's gate on starting containers, opened and closed by the memory-pressure worker. */
export class Admission {
  open = true;
  availablePct: number | null = null;

  /** Throws `capacity` (503 + Retry-After) while memory is short. */
  check(what: string): void {
    if (this.open) return;
    throw new AppError('capacity', `the server is short of memory (${this.availablePct?.toFixed(1)}% available): cannot ${what} now; retry shortly`, undefined, RETRY_AFTER_S);
  }
}
