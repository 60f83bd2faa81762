import type { ExecSession } from '../runtime/runtime.ts';
import type { EventBudget } from './budget.ts';
import type { TaskEventBody } from '../model/task-events.ts';
import { LineReader, type OutputLine } from './lines.ts';
import type { Normaliser } from './agents/index.ts';

/** What reading an agent's output needs from the task it belongs to. */
export interface OutputOptions {
  session: ExecSession;
  maxLineBytes: number;
  budget: EventBudget;
  normaliser: Normaliser;
  /** Lines a previous daemon already turned into events: they only rebuild the normaliser's state. */
  already: number;
  /** Whether the first line is the agent's pid (a launch), not output. */
  pidFirst: boolean;
  onPid(pid: number | undefined): void;
  /** Commits events (and the line count they take the task to); may throw, which ends the task. */
  emit(bodies: TaskEventBody[], linesRead: number): void;
}

/**
 * Reads an agent's output file as the exec following it prints it, bounded in every way a sandbox can push:
 * lines are capped (LineReader), events go through the task's budget (a cap and a rate), and when the rate
 * is spent the exec is paused, so the file waits in the sandbox rather than in memory here. Each chunk's
 * events are committed in one transaction. Whatever a callback throws ends this read (and so the task),
 * never the worker thread.
 */
export class OutputReader {
  private o: OutputOptions;
  private lines: LineReader;
  private queue: OutputLine[] = [];
  private head = 0;
  private lineNo = 0;
  private pidFirst: boolean;
  private batch: TaskEventBody[] = [];
  private batchLine = 0;
  private waiting = false;
  private broken: unknown;
  private stderr = '';
  private idle: (() => void) | undefined;

  constructor(o: OutputOptions) {
    this.o = o;
    this.lines = new LineReader(o.maxLineBytes);
    this.pidFirst = o.pidFirst;
  }

  /** Reads until the exec has ended and every line is handled; answers its exit code and the tail of its stderr. */
  async run(): Promise<{ exitCode: number; stderr: string }> {
    this.o.session.onOutput((stream, chunk) => this.guard(() => this.chunk(stream, chunk)));
    const { exitCode } = await this.o.session.done;
    // Lines may still wait for the rate to allow them: they are read before the exec counts as done.
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      if (!this.waiting || this.broken) resolve();
    });
    if (this.broken) throw this.broken;
    const last = this.lines.end();
    if (last) this.consume(last);
    this.flush();
    return { exitCode, stderr: this.stderr };
  }

  private guard(fn: () => void): void {
    if (this.broken) return;
    try {
      fn();
    } catch (err) {
      // A failed commit (disk full, a lock held too long) or a bug ends this task, not the thread it shares with others.
      this.broken = err;
      void this.o.session.kill('KILL').catch(() => undefined);
      // A paused stream would never reach its end: let it flow (its output is ignored from now on).
      this.o.session.resume();
      this.idle?.();
    }
  }

  private chunk(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (stream === 'stderr') {
      this.stderr = (this.stderr + chunk.subarray(Math.max(0, chunk.length - 2000)).toString('utf8')).slice(-2000);
      return;
    }
    for (const line of this.lines.push(chunk)) this.queue.push(line);
    if (!this.waiting) this.drain();
  }

  /** Handles queued lines until the budget's rate says wait (then pauses the exec) or none are left. */
  private drain(): void {
    while (this.head < this.queue.length) {
      const line = this.queue[this.head++]!;
      this.consume(line);
      const wait = this.o.budget.waitMs();
      if (wait > 0) {
        this.flush();
        this.pauseFor(wait);
        return;
      }
    }
    this.queue = [];
    this.head = 0;
    this.flush();
    this.idle?.();
  }

  private pauseFor(ms: number): void {
    this.waiting = true;
    this.o.session.pause();
    setTimeout(() => this.guard(() => {
      this.waiting = false;
      this.drain();
      if (!this.waiting) this.o.session.resume();
    }), ms);
  }

  private consume(line: OutputLine): void {
    if (this.pidFirst) {
      this.pidFirst = false;
      return this.o.onPid('text' in line ? Number(line.text.trim()) || undefined : undefined);
    }
    const n = ++this.lineNo;
    const bodies: TaskEventBody[] = 'text' in line ? this.o.normaliser.line(line.text) : [{
      type: 'truncated', reason: 'line_too_long', limit: this.o.maxLineBytes, line: n, bytes: line.bytes,
      message: `output line ${n} was ${line.bytes} bytes long, over SANDBOXD_TASK_MAX_LINE_BYTES (${this.o.maxLineBytes}): it was cut there and dropped up to its newline; the lines after it are read`,
    }];
    if (n <= this.o.already) return;
    // Every line read past the recorded count costs the rate, events or not: a flood of ignored lines (or one
    // after the cap) is paused like any other. Lines already read were charged by the daemon that read them.
    this.o.budget.read('text' in line ? Buffer.byteLength(line.text) : line.bytes);
    if (!bodies.length) return;
    const kept = this.o.budget.admit(bodies);
    if (!kept.length) return;
    this.batch.push(...kept);
    this.batchLine = n;
  }

  private flush(): void {
    if (!this.batch.length) return;
    const bodies = this.batch;
    this.batch = [];
    this.o.emit(bodies, this.batchLine);
  }
}
