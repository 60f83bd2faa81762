/**
 * Paces the output every sandbox streams to its clients, all its commands together, to `bytesPerS`.
 *
 * Why: output is relayed by the daemon's main thread and by the engine, and a command printing as fast as
 * it can (fifty of them in one sandbox) would otherwise take as much CPU as the pipeline can give, slowing
 * every other tenant's requests. The pace works through the existing credit: a stream's bytes are credited
 * back to its worker (which pauses a command past 1 MiB uncredited) only as the sandbox's budget allows, so
 * a command over its pace blocks on its own output pipe, and nothing is dropped or held in this process.
 */
export class OutputPacer {
  private rate: number;
  private burst: number;
  private now: () => number;
  private buckets = new Map<string, Bucket>();

  /** `bytesPerS` 0 turns pacing off. `burst`: bytes a sandbox may send at once after a quiet spell. */
  constructor(bytesPerS: number, opts: { burst?: number; now?: () => number } = {}) {
    this.rate = bytesPerS;
    this.burst = opts.burst ?? Math.max(64 * 1024, bytesPerS / 4);
    this.now = opts.now ?? Date.now;
  }

  /** Runs `credit` once `bytes` of the sandbox's pace are available: at once while it is under its pace. */
  spend(sandboxId: string, bytes: number, credit: () => void): void {
    if (this.rate <= 0) return credit();
    let b = this.buckets.get(sandboxId);
    if (!b) this.buckets.set(sandboxId, (b = { tokens: this.burst, at: this.now(), queue: [], timer: undefined }));
    b.queue.push({ bytes, credit });
    this.drain(sandboxId, b);
  }

  /** Sandboxes with a bucket (for tests and the pruning check). */
  get tracked(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket): void {
    const t = this.now();
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
  }

  /** Wakes the bucket when its debt is paid (something waits) or when it is full again (then it is forgotten). */
  private schedule(sandboxId: string, b: Bucket): void {
    if (b.timer) clearTimeout(b.timer);
    // drain() leaves something queued only while the bucket is in debt.
    const short = b.queue.length ? -b.tokens : this.burst - b.tokens;
    const waitMs = Math.max(1, Math.ceil((short / this.rate) * 1000));
    b.timer = setTimeout(() => {
      b.timer = undefined;
      this.drain(sandboxId, b);
    }, waitMs);
    b.timer.unref?.();
  }

  private drain(sandboxId: string, b: Bucket): void {
    this.refill(b);
    while (b.queue.length && b.tokens >= 0) {
      const next = b.queue.shift()!;
      b.tokens -= next.bytes; // may go below zero: a chunk larger than the burst is let through and paid off after
      try {
        next.credit();
      } catch {
        // A credit to a stream that has ended is nothing to the others.
      }
    }
    if (b.queue.length) return this.schedule(sandboxId, b);
    // A full bucket with nothing waiting is the same as no bucket: forget it, so idle sandboxes cost nothing.
    if (b.tokens >= this.burst) this.buckets.delete(sandboxId);
    else this.schedule(sandboxId, b);
  }
}

interface Bucket {
  tokens: number;
  at: number;
  queue: { bytes: number; credit: () => void }[];
  timer: NodeJS.Timeout | undefined;
}
