import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

/** Retry-After sent while memory is short: about two pressure ticks. */
const RETRY_AFTER_S = 10;

/** The main thread's gate on starting containers, fed by the memory-pressure worker's readings. */
export class Admission {
  open = true;
  availablePct: number | null = null;
  private reading: { totalBytes: number; availableBytes: number } | undefined;
  private pressure: Config['pressure'];

  constructor(pressure: Config['pressure']) {
    this.pressure = pressure;
  }

  /** Takes a pressure pass's result. */
  update(r: { admissionOpen: boolean; availablePct: number; totalBytes: number; availableBytes: number }): void {
    this.open = r.admissionOpen;
    this.availablePct = r.availablePct;
    this.reading = { totalBytes: r.totalBytes, availableBytes: r.availableBytes };
  }

  /**
   * Throws `capacity` (503 + Retry-After) while memory is short, or when starting a sandbox of `memoryMb`
   * would take availability under the hard level.
   */
  check(what: string, memoryMb: number): void {
    if (!this.open) {
      throw new AppError('capacity', `the server is short of memory (${this.availablePct?.toFixed(1)}% available): cannot ${what} now; retry shortly`, undefined, RETRY_AFTER_S);
    }
    if (!this.reading) return;
    const expected = Math.min(memoryMb, this.pressure.startFootprintMb) * 1024 * 1024;
    const after = ((this.reading.availableBytes - expected) / this.reading.totalBytes) * 100;
    if (after < this.pressure.hardPct) {
      throw new AppError('capacity', `starting this sandbox would leave ${after.toFixed(1)}% of memory available, under the ${this.pressure.hardPct}% floor: cannot ${what} now; retry shortly`, undefined, RETRY_AFTER_S);
    }
  }
}
