import type { ExecSignal, ExecSpec } from '../model/exec.ts';

/**
 * How a worker hands output to the main thread, already encoded for the client so the main thread only
 * copies bytes: `sse` event frames, `json` WebSocket text frames, or the `raw` bytes (a terminal).
 */
export type OutputEncoding = 'sse' | 'json' | 'raw';

/** The worker refuses a command that waited in the queue past its `startBy` (its client has been told 429). */
export const QUEUE_EXPIRED = 'exec queue wait expired';

/** What the main thread asks a worker to run. */
export interface ExecTask {
  sandboxId: string;
  spec: ExecSpec;
  /** Kill the command's process group after this long; none when absent. */
  timeoutMs?: number;
  /** Epoch ms: a worker that gets to the command later refuses it (it waited too long in the queue). */
  startBy?: number;
  /** Per-stream cap on output kept for a buffered (sync) result. */
  capBytes: number;
  /** Stream output over the port in this encoding as it comes; absent: buffer it into the result. */
  stream?: OutputEncoding;
  /** A TTY's size, applied before any input is read. */
  size?: { cols: number; rows: number };
}

/** How a command ended. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Set when stdout/stderr are base64 because the bytes were not valid UTF-8. */
  encoding?: 'base64';
  exit_code: number;
  duration_ms: number;
  timed_out: boolean;
  truncated: boolean;
}

/** Worker → main thread, over the task's MessagePort. */
export type ExecEvent =
  /** A worker has taken the command off the queue (it will run, or report why not). */
  | { t: 'picked' }
  /** Encoded output; the main thread acks its length once the client's socket has taken it. */
  | { t: 'out'; data: Uint8Array }
  /** stdin bytes the command's stream has taken (written through, or drained): credit back for more. */
  | { t: 'stdin_ack'; bytes: number }
  /** Last message on the port: every chunk before it has been delivered. */
  | { t: 'end' };

/** Main thread → worker. `detach` stops relaying output without ending the command. */
export type ExecControl =
  | { t: 'stdin'; data: Uint8Array }
  | { t: 'stdin_end' }
  /** `urgent`: the client is gone; sent at once, ahead of (and dropping) control frames still waiting. */
  | { t: 'signal'; signal: ExecSignal; urgent?: boolean }
  | { t: 'resize'; cols: number; rows: number }
  | { t: 'ack'; bytes: number }
  | { t: 'detach' };
