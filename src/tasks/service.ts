import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config.ts';
import { reportUnexpected } from '../boundary.ts';
import { AppError } from '../errors.ts';
import { newId } from '../ids.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { WorkerPool } from '../pool.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { Actor } from '../sandboxes/lifecycle.ts';
import type { Wakes } from '../sandboxes/wake.ts';
import { isStorageFailure } from '../store/disk.ts';
import type { Store } from '../store/index.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { TaskRecord } from '../model/task.ts';
import { ZERO_USAGE, type TaskEvent } from '../model/task-events.ts';
import { ByteBudget, EventFeed, type EventSink } from './feed.ts';
import type { AgentName } from './agents/index.ts';
import type { TaskControl, TaskMessage } from './protocol.ts';

/** What a client asks for when it submits a task (already validated). */
export interface TaskRequest {
  prompt: string;
  agent: AgentName;
  model?: string;
  timeout_s?: number;
  env?: Record<string, string>;
}

/** A replay reads the store a page at a time: this many events, or this many bytes of them. */
const REPLAY_PAGE = 500;
const REPLAY_PAGE_BYTES = 1 << 20;
/** Replay pages all task streams may hold at once (see ByteBudget): 64 pages of REPLAY_PAGE_BYTES. */
const REPLAY_BUDGET_BYTES = 64 << 20;

/**
 * Agent tasks on the main thread: submits them to workers, relays the events workers have committed to
 * live listeners, cancels, and re-attaches to tasks a previous daemon left running.
 */
export class Tasks {
  private config: Config;
  private store: Store;
  private pool: WorkerPool;
  private wakes: Wakes;
  private activity: Activity;
  private log: Logger;
  private metrics: Metrics | undefined;
  private listeners = new Map<string, Set<EventFeed>>();
  /** Shared by every stream: what their replay pages may hold in memory together. */
  private replayBudget = new ByteBudget(REPLAY_BUDGET_BYTES);
  private workers = new Map<string, MessagePort>();
  /** Set while the daemon shuts down: workers ended by the shutdown leave their tasks for the next daemon. */
  private closing = false;

  constructor(deps: { config: Config; store: Store; pool: WorkerPool; wakes: Wakes; activity: Activity; log: Logger; metrics?: Metrics }) {
    this.metrics = deps.metrics;
    this.config = deps.config;
    this.store = deps.store;
    this.pool = deps.pool;
    this.wakes = deps.wakes;
    this.activity = deps.activity;
    this.log = deps.log;
  }

  /** Starts a task: one running task per sandbox, and a stopped sandbox is woken first. */
  async submit(sandbox: SandboxRecord, req: TaskRequest, actor: Actor): Promise<TaskRecord> {
    this.refuseIfBusy(sandbox.id);
    // The shared wake: a task arriving during an idle stop waits for it, then wakes the sandbox.
    await this.wakes.awake(sandbox.id, 'wake:task', actor);
    const id = newId();
    const inserted = this.store.tasks.insert({
      id, sandboxId: sandbox.id, owner: sandbox.owner, agent: req.agent, model: req.model ?? null, prompt: req.prompt,
      timeoutS: req.timeout_s ?? this.config.tasks.timeoutS, createdAt: Date.now(),
    });
    if (!inserted) {
      this.refuseIfBusy(sandbox.id);
      // The other task ended between the insert and this look: the client may simply try again.
      throw new AppError('task_in_progress', 'another task was starting in this sandbox; submit again', undefined, 1);
    }
    // The env may hold provider keys: the audit log names the variables, never their values.
    this.store.audit.record({
      actor: actor.name, action: 'task.create', sandboxId: sandbox.id, requestId: actor.requestId, outcome: 'ok',
      detail: { task: id, agent: req.agent, env: Object.keys(req.env ?? {}) },
    });
    this.activity.touch(sandbox.id, 'task');
    this.run(id, sandbox.id, req.env ?? {}, false);
    return this.store.tasks.get(id)!;
  }

  private refuseIfBusy(sandboxId: string): void {
    const busy = this.store.tasks.runningIn(sandboxId);
    if (busy) throw new AppError('task_in_progress', `task ${busy.id} is still running in this sandbox; wait for it to end or cancel it (POST .../tasks/${busy.id}/cancel)`, { task_id: busy.id }, 5);
  }

  /** One task's record, if it exists. */
  get(taskId: string): TaskRecord | undefined {
    return this.store.tasks.get(taskId);
  }

  /** A sandbox's tasks, newest first, `limit` of them after the cursor (a task id). */
  list(sandboxId: string, limit: number, cursor?: string): TaskRecord[] {
    return this.store.tasks.list(sandboxId, limit, cursor);
  }

  /** Asks a running task to stop; it ends `cancelled` once the agent is gone. Ended tasks are left as they are. */
  cancel(task: TaskRecord, actor: Actor): void {
    if (task.status !== 'running') return;
    this.store.tasks.requestStop(task.id, 'cancelled');
    this.store.audit.record({ actor: actor.name, action: 'task.cancel', sandboxId: task.sandboxId, requestId: actor.requestId, outcome: 'ok', detail: { task: task.id } });
    const port = this.workers.get(task.id);
    if (port) port.postMessage({ t: 'stop' } satisfies TaskControl);
    else this.end(task.id, 'cancelled', 'the task was cancelled');
  }

  /** The daemon is shutting down: running tasks stay `running`, for the next daemon to re-attach. */
  close(): void {
    this.closing = true;
  }

  /** Re-attaches to every task a previous daemon left running (their workers died with it). */
  resume(): number {
    const running = this.store.tasks.running();
    for (const t of running) this.run(t.id, t.sandboxId, {}, true);
    return running.length;
  }

  /**
   * Sends `sink` every event after `since` (replayed from the store a page at a time), then the live ones,
   * each exactly once and in order, waiting whenever the client's socket is backed up; ends it after `done`
   * or when the task is deleted. Answers a function that stops it (the client left), mid-replay too.
   */
  follow(taskId: string, since: number, sink: EventSink): () => void {
    if (this.sentAll(taskId, since)) {
      // Nothing will come after `since` (it is at or past `done`): waiting would hold the stream open for ever.
      sink.close('done');
      return () => undefined;
    }
    const feed = new EventFeed({ since, page: REPLAY_PAGE, read: (after, limit) => this.store.tasks.eventsAfter(taskId, after, limit, REPLAY_PAGE_BYTES), sink, budget: { bytes: this.replayBudget, page: REPLAY_PAGE_BYTES } });
    // Listen before reading the store: an event committed meanwhile arrives both ways and is sent once.
    let set = this.listeners.get(taskId);
    if (!set) this.listeners.set(taskId, (set = new Set()));
    set.add(feed);
    const stop = () => {
      feed.stop();
      set.delete(feed);
      if (!set.size && this.listeners.get(taskId) === set) this.listeners.delete(taskId);
    };
    feed.run().catch((err: unknown) => {
      // A failed read or write ends this one stream, never the thread that answers every request.
      this.unexpected(err, { task: taskId });
      try {
        sink.close('error');
      } catch {
        // the socket is gone already
      }
    }).finally(stop);
    return stop;
  }

  /** True when the task has ended and `since` is at or past its last event (`done`): a stream after it gets nothing. */
  sentAll(taskId: string, since: number): boolean {
    const task = this.store.tasks.get(taskId);
    return !!task && task.status !== 'running' && since >= task.events;
  }

  private publish(taskId: string, e: TaskEvent): void {
    for (const feed of this.listeners.get(taskId) ?? []) feed.live(e);
  }

  private unexpected(err: unknown, fields: Record<string, unknown>): void {
    reportUnexpected(this.log, this.metrics, 'tasks', err, fields);
  }

  private run(taskId: string, sandboxId: string, env: Record<string, string>, attach: boolean): void {
    const lease = this.activity.openLease(sandboxId, 'task');
    const { port, done } = this.pool.task(taskId, env, attach);
    this.workers.set(taskId, port);
    port.on('message', (m: TaskMessage) => {
      try {
        if (m.t === 'events') m.events.forEach((e) => this.publish(taskId, e));
        else if (m.t === 'unexpected') this.unexpected(Object.assign(new Error(m.error), { stack: m.stack }), { task: taskId, thread: 'worker' });
      } catch (err) {
        this.unexpected(err, { task: taskId });
      }
    });
    done.then(
      () => undefined,
      (err: unknown) => {
        port.close();
        if (this.closing) return; // the shutdown ended the worker; the next daemon re-attaches the task
        // The worker's own boundaries should have ended the task; a full disk is expected, anything else is a bug.
        if (isStorageFailure(err)) this.log.error('a task worker failed', { task: taskId, error: errorMessage(err) });
        else this.unexpected(err, { task: taskId });
        this.end(taskId, 'failed', `the task's worker failed inside sandboxd: ${errorMessage(err)}`);
      },
    ).finally(() => {
      this.workers.delete(taskId);
      lease.release();
      if (this.closing) return;
      // A purge deletes the task with its sandbox: nothing more will come, so streams following it end. Else
      // whatever the worker committed (its `done` too) is read from the store: its last posts may be lost.
      const gone = !this.store.tasks.get(taskId);
      for (const f of [...(this.listeners.get(taskId) ?? [])]) {
        if (gone) f.gone();
        else f.catchUp();
      }
    }).catch((err: unknown) => this.unexpected(err, { task: taskId }));
  }

  /** Ends a task no worker is running, with a `done` event for its listeners. */
  private end(taskId: string, status: 'failed' | 'cancelled', error: string): void {
    const task = this.store.tasks.get(taskId);
    if (!task || task.status !== 'running') return;
    const done = this.store.tasks.finish(taskId, {
      status, reason: status === 'cancelled' ? 'cancelled' : 'internal', error, message: null, files_changed: null, usage: ZERO_USAGE,
      build: null, preview: null, checkpoint: task.checkpoint, duration_ms: Date.now() - (task.startedAt ?? task.createdAt),
    });
    if (done) this.publish(taskId, done);
  }
}
