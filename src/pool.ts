import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { workerConfig, type Config } from './config.ts';
import { AppError } from './errors.ts';
import { errorMessage, type Logger } from './log.ts';
import { ExecHandle } from './exec/handle.ts';
import { OutputPacer } from './exec/pacing.ts';
import { QUEUE_EXPIRED, type ExecResult, type ExecTask } from './exec/protocol.ts';
import type { Metrics } from './metrics.ts';
import type { Admission } from './sandboxes/admission.ts';
import type { ReconcileReport } from './sandboxes/reconcile.ts';

const reconcilerFile = new URL('../threads/reconciler.ts', import.meta.url).href;
const execFile = new URL('../threads/exec.ts', import.meta.url).href;
const reapersFile = new URL('../threads/reapers.ts', import.meta.url).href;
const tasksFile = new URL('../threads/tasks.ts', import.meta.url).href;
const maintenanceFile = new URL('../threads/maintenance.ts', import.meta.url).href;

/** How often a background worker checkpoints the WAL (the main thread's connection never does). */
const CHECKPOINT_EVERY_MS = 5000;

/** How long a client refused for a full exec pool is told to wait. */
const POOL_FULL_RETRY_S = 5;
/** Slack between the worker's own deadline check and the main thread giving up on a queued command. */
const QUEUE_GRACE_MS = 2000;

/** The worker pool that runs everything long-lived or heavy, off the thread that answers requests. */
export class WorkerPool {
  private pool: Piscina;
  private taskPool: Piscina;
  /** The reapers, the reconciler and its event follower: a pool user work never runs on, so it cannot fill it. */
  private background: Piscina;
  /** Commands the exec pool carries at once (threads x tasks per thread), and how many more may wait. */
  readonly execCapacity: number;
  private execLimit: number;
  private timers: NodeJS.Timeout[] = [];
  /** The pace of each sandbox's streamed output, all its commands together. */
  private pacer: OutputPacer;

  private config: Config;
  /** What every job is sent as its config: no token secrets (see workerConfig). */
  private jobConfig: Config;
  private log: Logger;
  private metrics: Metrics | undefined;

  constructor(config: Config, log: Logger, metrics?: Metrics) {
    this.config = config;
    this.jobConfig = workerConfig(config);
    this.pacer = new OutputPacer(config.caps.execOutputMbPerS * 1024 * 1024);
    this.log = log;
    this.metrics = metrics;
    // Every worker task waits on I/O (engine sockets, SQLite), so one thread carries many at once. piscina
    // gives work to the least busy thread that exists and starts another only when all are full: a flood of
    // exec output stays on few threads and cannot starve the thread that answers requests.
    const perThread = config.caps.execPerThread;
    this.execCapacity = config.workerThreads * perThread;
    this.execLimit = this.execCapacity + config.caps.execQueueMax;
    // Admission is counted here (exec() refuses past execLimit); piscina's own queue bound is only a backstop.
    this.pool = new Piscina({ maxThreads: config.workerThreads, minThreads: 1, idleTimeout: 60_000, concurrentTasksPerWorker: perThread, maxQueue: this.execLimit });
    // Every background job is guarded against running twice at once (at most ~5 in flight), so 16 never queues.
    this.background = new Piscina({ maxThreads: 1, minThreads: 1, idleTimeout: 60_000, concurrentTasksPerWorker: 16 });
    // Agent tasks get a thread of their own, so an exec flood does not hold up their events.
    this.taskPool = new Piscina({ maxThreads: Math.max(1, Math.ceil(config.workerThreads / 2)), minThreads: 1, idleTimeout: 60_000, concurrentTasksPerWorker: 256 });
  }

  /** One full reconcile pass in a worker. */
  reconcile(boot: boolean): Promise<ReconcileReport> {
    return this.background.run({ config: this.jobConfig, boot }, { filename: reconcilerFile, name: 'reconcile' });
  }

  /**
   * Runs a command in a sandbox from a worker; output and control flow over a MessagePort. Throws
   * `rate_limited` when the pool and its bounded queue are full, so no caller ever waits without end.
   */
  exec(task: ExecTask): ExecHandle {
    this.assertRoom();
    const queued = this.execActive >= this.execCapacity;
    this.execActive++;
    const waitMs = this.config.caps.execQueueWaitS * 1000;
    const startBy = Date.now() + waitMs;
    const { port1, port2 } = new MessageChannel();
    const result = this.pool.run({ config: this.jobConfig, exec: { ...task, startBy }, port: port2 }, { filename: execFile, name: 'runExec', transferList: [port2] }) as Promise<ExecResult>;
    // The handle closes the port once the worker's `end` marker has come through: closing it when the result
    // arrives (on piscina's own channel) could drop output still queued on the port. Only a failed task closes it here.
    result.then(() => this.execActive--, () => (port1.close(), this.execActive--));
    const outcome = result.catch((err: unknown) => {
      throw err instanceof Error && err.message.includes(QUEUE_EXPIRED) ? this.queueExpired() : err;
    });
    const pace = (bytes: number, credit: () => void) => this.pacer.spend(task.sandboxId, bytes, credit);
    if (!queued) return new ExecHandle(port1, outcome, pace);
    // Queued behind commands that may run for hours (README execs outlive their clients): the client is
    // answered 429 once the wait is over, and the worker refuses the command if it gets to it after that.
    let picked = false;
    port1.on('message', (e: { t: string }) => void (e.t === 'picked' && (picked = true)));
    const expired = new Promise<never>((_, reject) => {
      const timer = setTimeout(() => !picked && reject(this.queueExpired()), waitMs + QUEUE_GRACE_MS);
      timer.unref();
      result.finally(() => clearTimeout(timer)).catch(() => undefined);
    });
    return new ExecHandle(port1, Promise.race([outcome, expired]), pace);
  }

  private queueExpired(): AppError {
    return new AppError('rate_limited', `the command waited ${this.config.caps.execQueueWaitS} s (SANDBOXD_EXEC_QUEUE_WAIT_S) for a free exec slot and was not run: the pool is busy with long-running commands; retry after ${POOL_FULL_RETRY_S} s`,
      { cap: 'exec_queue_wait', limit: this.config.caps.execQueueWaitS }, POOL_FULL_RETRY_S);
  }

  /**
   * Runs an agent task (or re-attaches to one) in a worker; its events arrive on `port` once committed,
   * and `stop` goes back the same way. `done` settles when the task has ended.
   */
  task(taskId: string, env: Record<string, string>, attach: boolean): { port: MessagePort; done: Promise<string> } {
    const { port1, port2 } = new MessageChannel();
    const done = this.taskPool.run({ config: this.jobConfig, taskId, env, attach, port: port2 }, { filename: tasksFile, name: 'runTask', transferList: [port2] }) as Promise<string>;
    return { port: port1, done };
  }

  /** Throws `rate_limited` (with Retry-After) when another exec would wait past the bounded queue. */
  assertRoom(): void {
    if (this.execActive < this.execLimit) return;
    const { workerThreads, caps } = this.config;
    throw new AppError('rate_limited',
      `the exec worker pool is full: ${this.execActive} commands run or wait (SANDBOXD_WORKER_THREADS ${workerThreads} x SANDBOXD_EXEC_PER_THREAD ${caps.execPerThread}, plus SANDBOXD_EXEC_QUEUE_MAX ${caps.execQueueMax} waiting); retry after ${POOL_FULL_RETRY_S} s`,
      { cap: 'exec_pool', limit: this.execLimit }, POOL_FULL_RETRY_S);
  }

  /** Starts the reconciler, the event follower, the idle reaper, the pressure watch and WAL checkpoints; they live as long as the pool. */
  startBackground(admission: Admission): void {
    // The follower runs for the pool's life: if its thread dies (a crash, an out-of-memory worker), container
    // deaths would go unnoticed until the next periodic pass, so it is started again, with a growing delay.
    keepRunning(() => this.background.run({ config: this.jobConfig }, { filename: reconcilerFile, name: 'watchEvents' }), {
      stopped: () => this.closed,
      onEnd: (err, restartInMs) => {
        this.log.error('the runtime event follower stopped; restarting it', { error: err === undefined ? 'it returned' : errorMessage(err), restart_in_ms: restartInMs });
        this.metrics?.inc('sandboxd_worker_restarts_total', 'Long-running worker jobs started again after their thread died or they ended, by job.', { job: 'event_follower' });
      },
    });
    // Each pass is single-flight: one slower than its interval is never run twice at once nor stacked up.
    this.timers.push(everyInterval(this.config.reconcileIntervalS * 1000, () => this.reconcile(false).then(
      (r) => r.repaired.length && this.log.info('periodic reconcile repaired rows', { repaired: r.repaired.length }),
      (err: unknown) => this.log.warn('periodic reconcile failed; retrying next interval', { error: errorMessage(err) }),
    ), (runningMs) => this.log.warn('periodic reconcile skipped: the previous pass is still running', { running_ms: runningMs, interval_s: this.config.reconcileIntervalS })));
    this.timers.push(everyInterval(this.config.idleTickS * 1000, () =>
      (this.background.run({ config: this.jobConfig }, { filename: reapersFile, name: 'reapIdle' }) as Promise<string[]>)
        .catch((err: unknown) => this.log.warn('idle reaper pass failed', { error: errorMessage(err) }))));
    this.timers.push(everyInterval(CHECKPOINT_EVERY_MS, () =>
      this.background.run({ config: this.jobConfig }, { filename: maintenanceFile, name: 'checkpointWal' })
        .catch((err: unknown) => this.log.warn('WAL checkpoint failed; retrying next interval', { error: errorMessage(err) }))));
    this.timers.push(everyInterval(this.config.pressure.tickS * 1000, () =>
      (this.background.run({ config: this.jobConfig, admissionOpen: admission.open }, { filename: reapersFile, name: 'relievePressure' }) as Promise<{ availablePct: number; admissionOpen: boolean; totalBytes: number; availableBytes: number }>)
        .then((r) => {
          if (r.admissionOpen !== admission.open) this.log.warn(r.admissionOpen ? 'memory recovered: wakes and creates admitted again' : 'memory short: refusing wakes and creates', { available_pct: Number(r.availablePct.toFixed(1)) });
          admission.update(r);
        })
        .catch((err: unknown) => this.log.warn('memory pressure pass failed', { error: errorMessage(err) }))));
  }

  private closed = false;
  private execActive = 0;

  /** Figures for /metrics. */
  stats(): { threads: number; queued: number; utilization: number; execActive: number; execCapacity: number } {
    return { threads: this.pool.threads.length, queued: this.pool.queueSize, utilization: this.pool.utilization, execActive: this.execActive, execCapacity: this.execCapacity };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timers.forEach(clearInterval);
    await Promise.all([this.pool.destroy(), this.taskPool.destroy(), this.background.destroy()]);
  }
}

/**
 * Runs `pass` every `intervalMs`, never two at once: a tick that finds the previous pass still running is
 * skipped, and `onSkip` hears how long that pass has run so far. Answers the timer (clear it to stop).
 */
export function everyInterval(intervalMs: number, pass: () => Promise<unknown>, onSkip?: (runningMs: number) => void): NodeJS.Timeout {
  let runningSince: number | undefined;
  return setInterval(() => {
    if (runningSince !== undefined) return onSkip?.(Date.now() - runningSince);
    runningSince = Date.now();
    Promise.resolve().then(pass).catch(() => undefined).finally(() => (runningSince = undefined));
  }, intervalMs);
}

/** A restarted job that then ran this long was healthy: its next restart waits the shortest delay again. */
const STABLE_RUN_MS = 60_000;

/** Delay before the `restarts`-th restart in a row of a job that keeps ending: 1 s, doubling, at most 30 s. */
export function restartDelayMs(restarts: number): number {
  return Math.min(1000 * 2 ** Math.min(restarts, 5), 30_000);
}

/**
 * Keeps a job that should never end running: whenever its promise settles (its thread died, or it returned)
 * and `stopped()` is false, `onEnd` hears why (undefined when it returned) and the job is started again after
 * `restartDelayMs(restarts)`, which grows while it keeps ending and starts over once a run lasted `stableMs`.
 */
export function keepRunning(start: () => Promise<unknown>, opts: {
  stopped: () => boolean;
  onEnd: (err: unknown, restartInMs: number) => void;
  stableMs?: number;
}): void {
  const stableMs = opts.stableMs ?? STABLE_RUN_MS;
  let restarts = 0;
  const run = () => {
    const startedAt = Date.now();
    Promise.resolve().then(start).then(() => undefined, (err: unknown) => err ?? new Error('the job failed without a reason')).then((err) => {
      if (opts.stopped()) return;
      if (Date.now() - startedAt >= stableMs) restarts = 0;
      const wait = restartDelayMs(restarts++);
      try {
        opts.onEnd(err, wait);
      } finally {
        setTimeout(() => {
          if (!opts.stopped()) run();
        }, wait).unref();
      }
    });
  };
  run();
}
