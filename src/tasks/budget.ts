import type { TaskEventBody } from '../model/task-events.ts';

/**
 * Room kept under the cap for the daemon's own events after the agent's: the build_check and health_check
 * statuses, the build, the `truncated` marker and `done` (one spare). So a task never stores more than
 * SANDBOXD_TASK_MAX_EVENTS events in all.
 */
export const RESERVED_EVENTS = 6;

/** Output lines read per event of the rate (lines that yield no event are cheap, but not free). */
export const LINES_PER_TOKEN = 40;
/** Output bytes read per event of the rate: at the default 500/s, 32 MiB/s of output. */
export const BYTES_PER_TOKEN = 64 << 10;

/**
 * What a task may store of its agent's events: at most `maxEvents` in all and `maxBytes` of the agent's
 * (then one `truncated` event and nothing more of the agent's), at `perSecond` on average (a token bucket
 * holding one second's worth). The daemon's own events (status, build, done) are always stored; they only
 * count towards the total.
 */
export class EventBudget {
  private readonly limit: number;
  private readonly maxEvents: number;
  private readonly perSecond: number;
  private readonly maxBytes: number;
  private count: number;
  private bytes: number;
  private tokens: number;
  private refilledAt = Date.now();
  /** Whether the cap has been reached (also when a previous daemon reached it: the count says so). */
  truncated: boolean;

  constructor(opts: { maxEvents: number; maxBytes: number; perSecond: number; stored: number; storedBytes: number }) {
    this.maxEvents = opts.maxEvents;
    this.maxBytes = opts.maxBytes;
    this.bytes = opts.storedBytes;
    this.limit = Math.max(1, opts.maxEvents - RESERVED_EVENTS);
    this.perSecond = opts.perSecond;
    this.tokens = opts.perSecond;
    this.count = opts.stored;
    this.truncated = opts.stored > this.limit || opts.storedBytes > opts.maxBytes;
  }

  /** Of the agent's events, the ones to store: all while under the cap, then the `truncated` marker once, then none. */
  admit(bodies: TaskEventBody[]): TaskEventBody[] {
    const kept: TaskEventBody[] = [];
    for (const b of bodies) {
      if (this.truncated) break;
      const size = Buffer.byteLength(JSON.stringify(b));
      if (this.count < this.limit && this.bytes + size <= this.maxBytes) {
        kept.push(b);
        this.count++;
        this.bytes += size;
        continue;
      }
      this.truncated = true;
      this.count++;
      const byCount = this.count > this.limit;
      const what = byCount ? `SANDBOXD_TASK_MAX_EVENTS (${this.maxEvents} events)` : `SANDBOXD_TASK_MAX_EVENT_BYTES (${this.maxBytes} bytes of events)`;
      kept.push({
        type: 'truncated', reason: byCount ? 'event_limit' : 'byte_limit', limit: byCount ? this.maxEvents : this.maxBytes,
        message: `the agent's output passed ${what}: no further message, tool or usage events are stored; the agent keeps running and the task ends with done as usual`,
      });
    }
    this.refill();
    this.tokens -= kept.length;
    return kept;
  }

  /**
   * Charges the rate for reading one output line of `bytes` bytes, whether or not it becomes an event (lines
   * the normaliser ignores, or read after the cap, still cost the daemon work): LINES_PER_TOKEN lines or
   * BYTES_PER_TOKEN bytes cost one event's worth, so a task cannot have its file read faster than that.
   */
  read(bytes: number): void {
    this.refill();
    this.tokens -= 1 / LINES_PER_TOKEN + bytes / BYTES_PER_TOKEN;
  }

  /** The daemon stored events of its own: the sequence number of the last one is the count. */
  stored(lastSeq: number): void {
    this.count = Math.max(this.count, lastSeq);
  }

  /** Milliseconds to wait before reading more output, so that the rate stays under `perSecond`; 0 when there is room. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }
}
