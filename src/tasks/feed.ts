import type { TaskEvent } from './events.ts';

/** Where a stream's events go (an SSE response, a WebSocket). */
export interface EventSink {
  /** Writes one event; false when the client's socket is backed up (then `drained` is awaited). */
  send(e: TaskEvent): boolean;
  /** Settles when the socket has room again or has closed. */
  drained(): Promise<void>;
  /** Ends the stream: after `done`, because the task was deleted, or because something failed. */
  close(why: 'done' | 'gone' | 'error'): void;
}

/** Live events held for a stream at most; past it the stream reads them back from the store instead. */
const HELD_MAX = 500;

/**
 * One stream following one task. Events come from the store a page at a time (a replay after
 * `Last-Event-ID`, or catching up after the client fell behind) and, once caught up, from the live events
 * the worker posts; each is sent once, in order, and only while the client's socket has room, so a slow
 * client costs a page of memory, not the task's whole history. A closed stream stops at once.
 */
export class EventFeed {
  private last: number;
  private held: TaskEvent[] = [];
  /** Live events were dropped (the client was behind, or too many came): the next ones come from the store. */
  private behind = false;
  /** Waiting for the client's socket to drain: live events are not held meanwhile (the store has them). */
  private draining = false;
  private closed = false;
  /** Resolves the wait for new events (a live one came, or the stream stopped). */
  private wake: (() => void) | undefined;
  /** Settles when the stream is stopped: a wait for the socket to drain ends with it. */
  private stopped: Promise<void>;
  private onStopped!: () => void;
  private readonly read: (after: number, limit: number) => TaskEvent[];
  private readonly sink: EventSink;
  private readonly page: number;

  constructor(opts: { since: number; page: number; read: (after: number, limit: number) => TaskEvent[]; sink: EventSink }) {
    this.last = opts.since;
    this.page = opts.page;
    this.read = opts.read;
    this.sink = opts.sink;
    this.stopped = new Promise((resolve) => (this.onStopped = resolve));
  }

  /** A live event (already committed to the store). */
  live(e: TaskEvent): void {
    if (this.closed || e.seq <= this.last) return;
    if (this.draining || this.held.length >= HELD_MAX) {
      this.held = [];
      this.behind = true;
    } else if (!this.behind) {
      this.held.push(e);
    }
    this.wakeUp();
  }

  /** The task was deleted: nothing more will come. */
  gone(): void {
    if (this.closed) return;
    this.stop();
    this.sink.close('gone');
  }

  /** The client went away: stop reading and sending. */
  stop(): void {
    this.closed = true;
    this.onStopped();
    this.wakeUp();
  }

  /** Sends events until `done` has been sent or the stream is stopped; what it throws is the caller's to report. */
  async run(): Promise<void> {
    while (!this.closed) {
      const batch = this.next();
      if (!batch) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      for (const e of batch) {
        if (this.closed) return;
        if (e.seq <= this.last) continue;
        this.last = e.seq;
        const room = this.sink.send(e);
        if (e.type === 'done') {
          this.closed = true;
          this.sink.close('done');
          return;
        }
        if (!room) {
          this.draining = true;
          await Promise.race([this.sink.drained(), this.stopped]);
          this.draining = false;
        }
      }
    }
  }

  /** The next events to send: held live ones that follow on, else a page from the store; undefined when there are none yet. */
  private next(): TaskEvent[] | undefined {
    if (!this.behind && this.held.length && this.held[0]!.seq <= this.last + 1) {
      const batch = this.held;
      this.held = [];
      return batch;
    }
    this.behind = false;
    const page = this.read(this.last, this.page);
    if (page.length) {
      // Held events the page covers are dropped; the rest follow on from it.
      const end = page.at(-1)!.seq;
      this.held = this.held.filter((e) => e.seq > end);
      return page;
    }
    if (this.held.length) {
      // Committed before they were posted, so the store has every event before them: nothing is skipped.
      const batch = this.held;
      this.held = [];
      return batch;
    }
    return undefined;
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
