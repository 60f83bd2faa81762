import type { TaskEvent } from '../model/task-events.ts';

/** Worker → main thread, over the task's MessagePort: events already committed to SQLite, in order. */
export type TaskMessage =
  | { t: 'events'; events: TaskEvent[] }
  /** A callback in the worker caught an error it did not expect (the task ends failed/internal): log and count it. */
  | { t: 'unexpected'; error: string; stack: string | undefined };

/** Main thread → worker: stop the agent (the reason is already recorded on the task row). */
export type TaskControl = { t: 'stop' };
