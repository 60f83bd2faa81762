import type { TaskOutcome, TaskPhase } from './task-events.ts';

export type TaskStatus = 'running' | TaskOutcome['status'];

/** One agent task. Its env is never stored: it may hold provider keys. */
export interface TaskRecord {
  id: string;
  sandboxId: string;
  owner: string;
  /** The name of a registered agent plug-in (src/tasks/agents): the API accepts only those. */
  agent: string;
  model: string | null;
  prompt: string;
  timeoutS: number;
  status: TaskStatus;
  phase: TaskPhase;
  reason: TaskOutcome['reason'];
  error: string | null;
  result: TaskOutcome | null;
  checkpoint: string | null;
  /** Lines of the agent's output already turned into events: a re-attach resumes after them. */
  linesRead: number;
  /** Events stored so far (the last sequence number): the per-task cap counts from it after a re-attach. */
  events: number;
  /** Set when a cancel or the timeout asked the agent to stop; the outcome follows it. */
  cancelReason: 'cancelled' | 'agent_timeout' | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}
