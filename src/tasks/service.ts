import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { newId } from '../ids.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { WorkerPool } from '../pool.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { Actor, Lifecycle } from '../sandboxes/lifecycle.ts';
import type { Store } from '../store/index.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { TaskRecord } from '../store/tasks.ts';
import { ZERO_USAGE, type TaskEvent } from './events.ts';
import type { AgentName } from './normalise.ts';
import type { TaskControl, TaskMessage } from './protocol.ts';

/** What a client asks for when it submits a task (already validated). */
export interface TaskRequest {
  prompt: string;
  agent: AgentName;
  model?: string;
  timeout_s?: number;
  env?: Record<string, string>;
}

const REPLAY_PAGE = 500;

/** A stream following a task: each event, and `gone` when the task itself was deleted (its sandbox purged). */
interface Listener {
  event(e: TaskEvent): void;
  gone(): void;
}

/**
 * Agent tasks on the main thread: submits them to workers, relays the events workers have committed to
 * live listeners, cancels, and re-attaches to tasks a previous daemon left running.
 */
export class Tasks {
  private config: Config;
  private store: Store;
  private pool: WorkerPool;
  private lifecycle: Lifecycle;
  private activity: Activity;
  private log: Logger;
  private listeners = new Map<string, Set<Listener>>();
  private workers = new Map<string, MessagePort>();
  /** Set while the daemon shuts down: workers ended by the shutdown leave their tasks for the next daemon. */
  private closing = false;

  constructor(deps: { config: Config; store: Store; pool: WorkerPool; lifecycle: Lifecycle; activity: Activity; log: Logger }) {
    this.config = deps.config;
    this.store = deps.store;
    this.pool = deps.pool;
    this.lifecycle = deps.lifecycle;
    this.activity = deps.activity;
    this.log = deps.log;
  }

  /** Starts a task: one running task per sandbox, and a stopped sandbox is woken first. */
  async submit(sandbox: SandboxRecord, req: TaskRequest, actor: Actor): Promise<TaskRecord> {
    this.refuseIfBusy(sandbox.id);
    if (sandbox.status !== 'running') await this.lifecycle.start(sandbox.id, 'wake:task', actor);
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
   * Calls `onEvent` with every event after `since` (replayed from the store), then the live ones, each
   * exactly once and in order. Answers a function that stops listening.
   */
  follow(taskId: string, since: number, onEvent: (e: TaskEvent) => void, onGone: () => void = () => undefined): () => void {
    let last = since;
    let replaying = true;
    const held: TaskEvent[] = [];
    const deliver = (e: TaskEvent) => {
      if (e.seq <= last) return;
      last = e.seq;
      onEvent(e);
    };
    const listener: Listener = { event: (e) => (replaying ? held.push(e) : deliver(e)), gone: onGone };
    // Listen before reading the store: an event committed meanwhile arrives both ways and is sent once.
    let set = this.listeners.get(taskId);
    if (!set) this.listeners.set(taskId, (set = new Set()));
    set.add(listener);
    for (;;) {
      const page = this.store.tasks.eventsAfter(taskId, last, REPLAY_PAGE);
      page.forEach(deliver);
      if (page.length < REPLAY_PAGE) break;
    }
    replaying = false;
    held.forEach(deliver);
    return () => {
      set.delete(listener);
      if (!set.size) this.listeners.delete(taskId);
    };
  }

  private publish(taskId: string, e: TaskEvent): void {
    for (const l of this.listeners.get(taskId) ?? []) l.event(e);
  }

  private run(taskId: string, sandboxId: string, env: Record<string, string>, attach: boolean): void {
    const lease = this.activity.openLease(sandboxId, 'task');
    const { port, done } = this.pool.task(taskId, env, attach);
    this.workers.set(taskId, port);
    port.on('message', (m: TaskMessage) => m.events.forEach((e) => this.publish(taskId, e)));
    done.then(
      () => undefined,
      (err: unknown) => {
        port.close();
        if (this.closing) return; // the shutdown ended the worker; the next daemon re-attaches the task
        this.log.error('a task worker failed', { task: taskId, error: errorMessage(err) });
        this.end(taskId, 'failed', `the task's worker failed inside sandboxd: ${errorMessage(err)}`);
      },
    ).finally(() => {
      this.workers.delete(taskId);
      lease.release();
      // A purge deletes the task with its sandbox: nothing more will come, so streams following it end.
      if (!this.closing && !this.store.tasks.get(taskId)) for (const l of [...(this.listeners.get(taskId) ?? [])]) l.gone();
    });
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
