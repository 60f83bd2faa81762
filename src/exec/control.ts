import type { ExecSignal } from '../model/exec.ts';

/** The engine calls a session's control frames turn into (each one is a round trip, a signal a fresh `docker exec`). */
export interface ControlTarget {
  kill(signal: ExecSignal): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
}

/** New signals a session may queue per second (and at once); more are dropped: signalling a command is not a data path. */
const SIGNALS_PER_S = 10;

/**
 * A session's signals and resizes, bounded and coalesced: at most one engine call in flight; a signal
 * already waiting is not queued twice; a resize replaces the one waiting (only the latest size matters);
 * new signals past a per-session rate are dropped. A flood of control frames thus costs one engine call
 * at a time and a few bytes, and `urgent` (the client left: hang up, kill) never queues behind it.
 */
export class ControlQueue {
  private target: ControlTarget;
  private signals: ExecSignal[] = [];
  private size: { cols: number; rows: number } | undefined;
  private running = false;
  private ended = false;
  private waiters: (() => void)[] = [];
  private tokens = SIGNALS_PER_S;
  private refilled = Date.now();
  /** Signals refused past the rate (for tests and logs). */
  dropped = 0;

  constructor(target: ControlTarget) {
    this.target = target;
  }

  /** Queues a signal, unless the same one waits already or the session sends them too fast. */
  signal(signal: ExecSignal): void {
    if (this.ended || this.signals.includes(signal)) return;
    if (!this.takeToken()) return void this.dropped++;
    this.signals.push(signal);
    void this.pump();
  }

  /** Sets the size to apply next, replacing any size still waiting. */
  resize(cols: number, rows: number): void {
    if (this.ended) return;
    this.size = { cols, rows };
    void this.pump();
  }

  /** Sends `signal` now, past everything waiting (which is dropped): the session is over. */
  urgent(signal: ExecSignal): void {
    this.ended = true;
    this.signals = [];
    this.size = undefined;
    void this.target.kill(signal).catch(() => undefined);
  }

  /** Settles once nothing waits or runs: input sent after a control frame waits for it, so a resize is not overtaken. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private takeToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(SIGNALS_PER_S, this.tokens + ((now - this.refilled) / 1000) * SIGNALS_PER_S);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const size = this.size;
        this.size = undefined;
        if (size) await this.target.resize(size.cols, size.rows).catch(() => undefined);
        else if (this.signals.length) await this.target.kill(this.signals.shift()!).catch(() => undefined);
        else break;
      }
    } finally {
      this.running = false;
      this.waiters.splice(0).forEach((w) => w());
    }
  }
}
