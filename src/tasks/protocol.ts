import type { TaskEvent } from './events.ts';

/** Worker → main thread, over the task's MessagePort: events already committed to SQLite, in order. */
export type TaskMessage = { t: 'events'; events: TaskEvent[] };

/** Main thread → worker: stop the agent (the reason is already recorded on the task row). */
export type TaskControl = { t: 'stop' };
