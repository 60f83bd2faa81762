/** What the task is doing; announced with a `status` event when it changes. */
export type TaskPhase = 'checkpoint' | 'agent_running' | 'build_check' | 'health_check';

/** Token use and cost, summed over a task's model turns. */
export interface Usage {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
  /** US dollars, as the agent reports it (0 when it reports none). */
  cost: number;
}

/** How a task ended, as `GET .../tasks/{taskId}` and the `done` event report it. */
export interface TaskOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  reason: 'agent_error' | 'agent_timeout' | 'cancelled' | 'sandbox_unavailable' | 'internal' | 'output_too_large' | null;
  /** What went wrong, in words a user can act on; null on success. */
  error: string | null;
  /** The agent's final message. */
  message: string | null;
  /** Paths (relative to ~/workspace/app) that differ from the checkpoint; null when there is no checkpoint. */
  files_changed: string[] | null;
  /** Set when more paths changed than files_changed lists (at most 1000). */
  files_changed_truncated?: true;
  usage: Usage;
  build: { ok: boolean; message?: string } | null;
  /** HTTP status of the first preview port after the run; null when nothing answered. */
  preview: { port: number; status: number | null } | null;
  /** The git commit taken before the agent ran (in ~/workspace/app): `git diff <checkpoint>` shows the task's work. */
  checkpoint: string | null;
  duration_ms: number;
}

/** The normalised events, the same for every agent. */
export type TaskEventBody =
  | { type: 'status'; phase: TaskPhase }
  | { type: 'message'; role: 'assistant'; text: string }
  | { type: 'tool'; name: string; status: 'started' | 'completed' | 'error'; path?: string }
  | { type: 'usage' } & Usage
  | { type: 'build'; ok: boolean; message?: string }
  /** Output not kept: an over-long line (`line_too_long`: line number, its length in bytes) or the task's events past a cap (`event_limit`, `byte_limit`). */
  | { type: 'truncated'; reason: 'line_too_long' | 'event_limit' | 'byte_limit'; limit: number; message: string; line?: number; bytes?: number }
  | { type: 'done'; result: TaskOutcome };

/** An event as stored and sent: its sequence number (1, 2, ...) within the task and when it happened. */
export type TaskEvent = TaskEventBody & { seq: number; at: number };

export const ZERO_USAGE: Usage = { input: 0, output: 0, cache_read: 0, cache_write: 0, cost: 0 };

/** Adds one turn's usage to a running total. */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    input: a.input + b.input, output: a.output + b.output, cache_read: a.cache_read + b.cache_read,
    cache_write: a.cache_write + b.cache_write, cost: Math.round((a.cost + b.cost) * 1e6) / 1e6,
  };
}
