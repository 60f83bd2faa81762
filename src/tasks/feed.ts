import type { TaskEvent } from '../model/task-events.ts';

/** Where a stream's events go (an SSE response, a WebSocket). */
export interface EventSink {
  /** Writes one event; false when the client's socket is backed up (then `drained` is awaited). */
  send(e: TaskEvent): boolean;
  /** Settles when the socket has room again or has closed. */
  drained(): Promise<void>;
  /** Ends the stream: after `done`, because the task was deleted, or because something failed. */
  close(why: 'done' | 'gone' | 'error'): void;
}

/**
 * Bytes of replay pages all streams may hold at once. A stream reserves a page's worth before it reads one
 * from the store and gives it back once the page is written and drained, so streams whose clients do not
 * read cost at most this much together: past it a stream waits for room instead of reading another page.
 */
export class ByteBudget {
  private free: number;
  private total: number;
  private waiting: { bytes: number; wake: () => void }[] = [];

  constructor(bytes: number) {
    this.free = this.total = bytes;
  }

  /** Waits for `bytes` of room (or for `cancel` to settle: then answers undefined); call the answer to give it back. */
  async take(bytes: number, cancel: Promise<void>): Promise<(() => void) | undefined> {
    const want = Math.min(bytes, this.total); // a page bigger than the budget waits for all of it, not forever
    if (!this.waiting.length && this.free >= want) return this.grant(want);
    let resolve!: (release: () => void) => void;
    const granted = new Promise<() => void>((r) => (resolve = r));
    const entry = { bytes: want, wake: () => resolve(this.grant(want)) };
    this.waiting.push(entry);
    const got = await Promise.race([granted, cancel.then(() => undefined)]);
    if (got) return got;
    const at = this.waiting.indexOf(entry);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      this.next();
    } else {
      void granted.then((release) => release()); // granted as it was cancelled: give it straight back
    }
    return undefined;
  }

  private grant(bytes: number): () => void {
    this.free -= bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.free += bytes;
      this.next();
    };
  }

  /** Wakes waiters in order while their bytes fit (first come, first served: a big page is not starved). */
  private next(): void {
    while (this.waiting.length && this.free >= this.waiting[0]!.bytes) this.waiting.shift()!.wake();
  }
}

/** Live events held for a stream at most; past it the stream reads them back from the store instead. */
const HELD_MAX = 500;

/**
 * One stream following one task. Events come from the store a page at a time (a replay after
 * `Last-Event-ID`, or catching up after the client fell behind) and, once caught up, from the live events
 * the worker posts; each is sent once, in order, and only while the client's socket has room, so a slow
 * client costs a page of memory and at most HELD_MAX live events, not the task's whole history. A closed
 * stream stops at once.
 */
export class EventFeed {
  private last: number;
  private held: TaskEvent[] = [];
  /** Live events were dropped (the client was behind, or too many came): the next ones come from the store. */
  private behind = false;
  /**
   * The last store read found nothing after `last`, and no live event was dropped since: every later event
   * comes live (each is posted after it is committed), so an empty hold needs no read. Without it each live
   * batch cost the main thread one empty query.
   */
  private caughtUp = false;
  private closed = false;
  /** Resolves the wait for new events (a live one came, or the stream stopped). */
  private wake: (() => void) | undefined;
  /** Settles when the stream is stopped: a wait for the socket to drain ends with it. */
  private stopped: Promise<void>;
  private onStopped!: () => void;
  private readonly read: (after: number, limit: number) => TaskEvent[];
  private readonly sink: EventSink;
  private readonly page: number;
  private readonly budget: { bytes: ByteBudget; page: number } | undefined;

  /** `budget`: the shared replay budget and what one page may hold (its byte limit in the store read). */
  constructor(opts: { since: number; page: number; read: (after: number, limit: number) => TaskEvent[]; sink: EventSink; budget?: { bytes: ByteBudget; page: number } }) {
    this.last = opts.since;
    this.page = opts.page;
    this.budget = opts.budget;
    this.read = opts.read;
    this.sink = opts.sink;
    this.stopped = new Promise((resolve) => (this.onStopped = resolve));
  }

  /** A live event (already committed to the store). */
  live(e: TaskEvent): void {
    if (this.closed || e.seq <= this.last) return;
    // Held while the socket drains too (a brief back-up is common under load): reading them back from the
    // store would cost the main thread a query per page; past HELD_MAX they are dropped and read back instead.
    if (this.held.length >= HELD_MAX) {
      this.held = [];
      this.behind = true;
    } else if (!this.behind) {
      this.held.push(e);
    }
    this.wakeUp();
  }

  /**
   * The task's worker is gone: events it committed may never come live (a failed worker's port is closed
   * with its messages still queued), so the next batch comes from the store, `done` included.
   */
  catchUp(): void {
    if (this.closed) return;
    this.behind = true;
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
      // A page read from the store takes room in the shared budget until it is written and drained.
      const release = this.budget && !this.followsOn() ? await this.budget.bytes.take(this.budget.page, this.stopped) : undefined;
      try {
        if (this.closed) return;
        const batch = this.next();
        if (!batch) {
          release?.(); // nothing read: an idle stream holds no room while it waits
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        if (!(await this.send(batch))) return;
      } finally {
        release?.();
      }
    }
  }

  /** Sends a batch, waiting whenever the socket is backed up; false once the stream is over. */
  private async send(batch: TaskEvent[]): Promise<boolean> {
    for (const e of batch) {
      if (this.closed) return false;
      if (e.seq <= this.last) continue;
      this.last = e.seq;
      const room = this.sink.send(e);
      if (e.type === 'done') {
        this.closed = true;
        this.sink.close('done');
        return false;
      }
      if (!room) {
        await Promise.race([this.sink.drained(), this.stopped]);
      }
    }
    return !this.closed;
  }

  /** The held live events follow on from the last one sent: the next batch needs no read from the store. */
  private followsOn(): boolean {
    return !this.behind && this.held.length > 0 && this.held[0]!.seq <= this.last + 1;
  }

  /** The next events to send: held live ones that follow on, else a page from the store; undefined when there are none yet. */
  private next(): TaskEvent[] | undefined {
    if (this.followsOn()) {
      // Only the run without a gap: posts lost between held events (a worker that died, then the daemon's own
      // `done`) leave the rest held, and the next batch reads the gap from the store.
      let end = 1;
      while (end < this.held.length && this.held[end]!.seq <= this.held[end - 1]!.seq + 1) end++;
      const batch = this.held.slice(0, end);
      this.held = this.held.slice(end);
      return batch;
    }
    if (this.caughtUp && !this.behind && !this.held.length) return undefined;
    this.behind = false;
    const page = this.read(this.last, this.page);
    this.caughtUp = page.length === 0;
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
