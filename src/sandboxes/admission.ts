import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { diskSpace, mib, STORAGE_RETRY_AFTER_S } from '../store/disk.ts';

/** Retry-After sent while memory is short: about two pressure ticks. */
const RETRY_AFTER_S = 10;

/** The data disk the gate watches: a create or wake is refused while it has less than `minFreeBytes` free. */
export interface DiskWatermark {
  dir: string;
  minFreeBytes: number;
}

/**
 * The main thread's one gate on starting containers: fed by the memory-pressure worker's readings, and
 * checking the data disk's free space (statfs, a cheap syscall) at each create or wake, before it is full.
 */
export class Admission {
  open = true;
  availablePct: number | null = null;
  private reading: { totalBytes: number; availableBytes: number } | undefined;
  private pressure: Config['pressure'];
  private disk: DiskWatermark | undefined;

  constructor(pressure: Config['pressure'], disk?: DiskWatermark) {
    this.pressure = pressure;
    this.disk = disk;
  }

  /** Takes a pressure pass's result. */
  update(r: { admissionOpen: boolean; availablePct: number; totalBytes: number; availableBytes: number }): void {
    this.open = r.admissionOpen;
    this.availablePct = r.availablePct;
    this.reading = { totalBytes: r.totalBytes, availableBytes: r.availableBytes };
  }

  /**
   * Throws `capacity` (503 + Retry-After) while memory is short, when starting a sandbox of `memoryMb`
   * would take availability under the hard level, or while the data disk is below its free-space watermark.
   */
  check(what: string, memoryMb: number): void {
    this.checkDisk(what);
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

  private checkDisk(what: string): void {
    if (!this.disk || this.disk.minFreeBytes <= 0) return;
    const { dir, minFreeBytes } = this.disk;
    let free: number;
    try {
      free = diskSpace(dir).freeBytes;
    } catch {
      return; // statfs itself failing says nothing about space; the write that follows reports the disk
    }
    if (free < minFreeBytes) {
      throw new AppError('capacity', `the data disk has ${mib(free)} free in ${dir}, below the ${mib(minFreeBytes)} watermark (SANDBOXD_MIN_FREE_MB): cannot ${what} now; free space in ${dir}, then retry`, { data_dir: dir, free_bytes: free }, STORAGE_RETRY_AFTER_S);
    }
  }
}
