import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../src/config.ts';
import { errorMessage, type Logger } from '../src/log.ts';
import type { ExecSession, Runtime } from '../src/runtime/runtime.ts';
import { SIGNAL_PID } from '../src/runtime/sandbox-scripts.ts';
import type { TaskRecord } from '../src/model/task.ts';
import type { Store } from '../src/store/index.ts';
import { agentFor, type Normaliser } from '../src/tasks/agents/index.ts';
import type { TaskEventBody, TaskOutcome, TaskPhase } from '../src/model/task-events.ts';
import { EventBudget } from '../src/tasks/budget.ts';
import { OutputReader } from '../src/tasks/output.ts';
import { redactor } from '../src/tasks/redact.ts';
import { HOME_IN_SANDBOX as HOME } from '../src/workspaces/paths.ts';
import type { TaskControl, TaskMessage } from '../src/tasks/protocol.ts';
import {
  AGENT_EXIT, ATTACH_INFO, BUILD_CHECK, CHECKPOINT, FILES_CHANGED, FOLLOW, HEALTH_CHECK, LAUNCH_AND_FOLLOW, MAX_FILES_CHANGED, NO_BUILD, taskDir,
} from '../src/tasks/scripts.ts';
import { workerContext } from './context.ts';

const PHASES: TaskPhase[] = ['checkpoint', 'agent_running', 'build_check', 'health_check'];
const SCRIPT_TIMEOUT_MS = 60_000;
/** Output of a sandbox-side script kept per stream; the scripts print little, unless the sandbox makes them print more. */
const SCRIPT_OUTPUT_MAX = 1 << 20;

/** A task could not go on for a reason the outcome names. */
class TaskFailure extends Error {
  readonly reason: NonNullable<TaskOutcome['reason']>;

  constructor(reason: NonNullable<TaskOutcome['reason']>, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Runs one agent task to its end in this worker, or re-attaches to one a previous daemon started
 * (`attach`). Every event is committed to SQLite, then posted to the main thread for live listeners.
 */
export async function runTask(job: { config: Config; taskId: string; env: Record<string, string>; attach: boolean; port: MessagePort }): Promise<TaskOutcome['status'] | 'gone'> {
  const ctx = workerContext(job.config, 'tasks');
  const task = ctx.store.tasks.get(job.taskId);
  if (!task || task.status !== 'running') return 'gone';
  const run = new TaskRun(ctx, task, job);
  job.port.on('message', (m: TaskControl) => run.guard(() => {
    if (m?.t === 'stop') void run.stop().catch((err: unknown) => run.crash(err));
  }));
  try {
    return await run.go();
  } finally {
    run.clearTimer();
    job.port.close();
  }
}

class TaskRun {
  private store: Store;
  private runtime: Runtime;
  private log: Logger;
  private config: Config;
  private task: TaskRecord;
  private env: Record<string, string>;
  private attach: boolean;
  private port: MessagePort;
  private redact: <T>(value: T) => T;
  private normaliser: Normaliser;
  /** What of the agent's output may still be stored: the per-task cap and rate. */
  private budget: EventBudget;
  /** An error a callback caught: the task ends failed/internal with it. */
  private crashed: unknown;
  private dir: string;
  private agentPid: number | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  /** The exec reading the agent's output, while it runs. */
  private following: ExecSession | undefined;
  /** The build check's exec, while it runs: a cancel ends it too. */
  private building: ExecSession | undefined;

  constructor(ctx: { store: Store; runtime: Runtime; log: Logger; config: Config }, task: TaskRecord, job: { env: Record<string, string>; attach: boolean; port: MessagePort }) {
    this.store = ctx.store;
    this.runtime = ctx.runtime;
    this.log = ctx.log;
    this.config = ctx.config;
    this.task = task;
    this.attach = job.attach;
    this.port = job.port;
    const sandboxEnv = this.store.sandboxes.get(task.sandboxId)?.env ?? {};
    this.env = { ...sandboxEnv, ...job.env };
    this.redact = redactor(this.env);
    this.normaliser = agentFor(task.agent).normaliser();
    this.budget = new EventBudget({
      maxEvents: this.config.tasks.maxEvents, maxBytes: this.config.tasks.maxEventBytes, perSecond: this.config.tasks.eventsPerS,
      stored: task.events, storedBytes: task.events ? this.store.tasks.eventBytes(task.id) : 0,
    });
    this.dir = taskDir(task.id);
  }

  /** Runs a callback (a port message, a timer) so that what it throws ends this task, never the worker thread. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.crash(err);
    }
  }

  /** Ends the task failed/internal after an unexpected error: stops reading output so that go() finishes it. */
  crash(err: unknown): void {
    this.crashed ??= err;
    try {
      // The main thread logs it once with its stack and counts it; a closed port leaves it to this thread's log.
      this.post({ t: 'unexpected', error: errorMessage(err), stack: err instanceof Error ? err.stack : undefined });
    } catch {
      this.log.error('unexpected error in a task', { task: this.task.id, error: errorMessage(err) });
    }
    void this.following?.kill('KILL').catch(() => undefined);
    void this.building?.kill('KILL').catch(() => undefined);
  }

  async go(): Promise<TaskOutcome['status']> {
    // The deadline counts from the submit, so a re-attached task keeps its original one.
    const left = (this.task.startedAt ?? this.task.createdAt) + this.task.timeoutS * 1000 - Date.now();
    this.timer = setTimeout(() => this.guard(() => {
      this.store.tasks.requestStop(this.task.id, 'agent_timeout');
      void this.stop().catch((err: unknown) => this.crash(err));
    }), Math.max(0, left));
    let outcome: TaskOutcome;
    try {
      outcome = await this.steps();
      if (this.crashed) throw this.crashed;
    } catch (err) {
      outcome = await this.failed(this.crashed ?? err);
    }
    const done = this.store.tasks.finish(this.task.id, outcome);
    if (done) this.post({ t: 'events', events: [done] });
    return outcome.status;
  }

  clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Stops the agent: SIGTERM to its whole session, SIGKILL after the grace period. Before launch, it keeps it from starting. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    void this.building?.kill('KILL').catch(() => undefined);
    const pid = this.agentPid;
    if (pid === undefined) return;
    await this.script(SIGNAL_PID, ['signal', String(pid), 'TERM']).catch(() => undefined);
    const graceMs = this.config.tasks.cancelGraceS * 1000;
    setTimeout(() => void this.script(SIGNAL_PID, ['signal', String(pid), 'KILL']).catch(() => undefined), graceMs).unref();
    // Last resort, so that no task waits forever: stop reading output that would never end.
    setTimeout(() => void this.following?.kill('KILL').catch(() => undefined), graceMs + 5000).unref();
  }

  private async steps(): Promise<TaskOutcome> {
    const reached = PHASES.indexOf(this.task.phase);
    if (this.attach && reached === 0) {
      // The previous daemon stopped before it launched the agent: starting over is safe.
      this.attach = false;
    }
    if (!this.attach) {
      this.emit([{ type: 'status', phase: 'checkpoint' }]);
      const cp = await this.script(CHECKPOINT, [this.task.id]);
      const checkpoint = cp.code === 0 ? cp.stdout.trim() : null;
      if (checkpoint === null) this.log.warn('git checkpoint failed; the task runs without one', { task: this.task.id, stderr: cp.stderr.slice(-300) });
      this.task.checkpoint = checkpoint;
      if (this.stopping) throw this.stopFailure();
      this.emit([{ type: 'status', phase: 'agent_running' }], { phase: 'agent_running', checkpoint });
    } else {
      const seen = await this.script(ATTACH_INFO, [this.dir]);
      const [pidLine = '', state = ''] = seen.stdout.split('\n');
      // The task env was never stored, so after a restart only the stored sandbox env (this.env) says which
      // secrets to cut out; the agent's /proc environ is not read: the sandbox controls which pid that would be.
      // An agent that had ended (its `exit` file and no process left in its session), or a task past it (the
      // phase the daemon recorded), is not timed out by a deadline that passed while no daemon ran; otherwise the
      // original deadline holds, so a sandbox cannot lift it by writing `exit` itself.
      if (state.trim() === 'exited' || reached >= PHASES.indexOf('build_check')) this.clearTimer();
      this.setPid(Number(pidLine.trim()) || undefined);
    }
    const exit = await this.follow(!this.attach);
    this.clearTimer();
    // The agent's session leader is gone; whatever it left behind in its session goes too.
    if (this.stopping && this.agentPid) await this.script(SIGNAL_PID, ['signal', String(this.agentPid), 'KILL']).catch(() => undefined);
    const failure = this.agentFailure(exit);
    if (failure) return this.outcome(failure);
    let build: TaskOutcome['build'];
    if (!this.attach || reached < PHASES.indexOf('health_check')) {
      if (!this.attach || reached < PHASES.indexOf('build_check')) this.emit([{ type: 'status', phase: 'build_check' }], { phase: 'build_check' });
      build = await this.buildCheck();
      if (this.stopping) return this.outcome(this.stopFailure(), { build });
      // The build's event and the next phase are committed together: a re-attach repeats neither.
      this.emit([...(build ? [{ type: 'build' as const, ...build }] : []), { type: 'status', phase: 'health_check' }], { phase: 'health_check' });
    } else {
      const done = this.store.tasks.lastOfType(this.task.id, 'build');
      build = done?.type === 'build' ? { ok: done.ok, ...(done.message !== undefined ? { message: done.message } : {}) } : null;
    }
    const preview = await this.healthCheck();
    return this.outcome(undefined, { build, preview });
  }

  /** Records the agent's pid; a cancel that came before it was known applies now. */
  private setPid(pid: number | undefined): void {
    this.agentPid = pid;
    if (pid !== undefined && this.stopping) {
      this.stopping = false;
      void this.stop().catch((err: unknown) => this.crash(err));
    }
  }

  /**
   * Launches the agent (`launch`) or re-attaches to it, and reads its output file from the first line until
   * the agent has exited. Lines the store has already turned into events (a re-attach) only rebuild the
   * normaliser's state.
   */
  private async follow(launch: boolean): Promise<{ code: number | null; tooLarge: boolean; stderr: string }> {
    let spec;
    if (launch) {
      const { cmd, env } = agentFor(this.task.agent).command({ prompt: this.task.prompt, model: this.task.model, taskId: this.task.id, env: this.env });
      spec = { cmd: ['/bin/sh', '-c', LAUNCH_AND_FOLLOW, this.dir, String(this.config.tasks.maxOutputMb * 1024 * 1024), ...cmd], cwd: HOME, env };
    } else {
      spec = { cmd: ['/bin/sh', '-c', FOLLOW, this.dir], cwd: HOME };
    }
    const session = await this.runtime.exec(this.task.sandboxId, spec);
    this.following = session;
    const reader = new OutputReader({
      session, maxLineBytes: this.config.tasks.maxLineBytes, budget: this.budget, normaliser: this.normaliser,
      already: this.task.linesRead, pidFirst: launch, onPid: (pid) => this.setPid(pid),
      emit: (bodies, linesRead) => this.emit(bodies, { linesRead }),
    });
    const { exitCode, stderr } = await reader.run().finally(() => (this.following = undefined));
    if (this.crashed) throw this.crashed;
    if (exitCode === 3 && !launch) throw new TaskFailure('internal', 'the daemon restarted while it was starting the agent; submit the task again');
    if (launch && this.agentPid === undefined) throw new TaskFailure('internal', `the agent could not be started: ${stderr.trim() || `exit code ${exitCode}`}`);
    if (exitCode !== 0) throw new TaskFailure('sandbox_unavailable', `following the agent's output failed (exit code ${exitCode}): ${stderr.trim() || 'the sandbox stopped'}`);
    const r = await this.script(AGENT_EXIT, [this.dir]);
    if (r.code !== 0) throw new TaskFailure('sandbox_unavailable', 'the sandbox stopped while the agent ran');
    const [first = 'none', cap = '', ...rest] = r.stdout.split('\n');
    return { code: first.trim() === 'none' ? null : Number(first.trim()), tooLarge: cap.trim() === 'too_large', stderr: rest.join('\n').trim() };
  }

  /** Why the agent's run failed, or undefined when it succeeded. */
  private agentFailure(exit: { code: number | null; tooLarge: boolean; stderr: string }): TaskFailure | undefined {
    const stopReason = this.store.tasks.get(this.task.id)?.cancelReason;
    if (stopReason) return this.stopFailure(stopReason);
    const cap = this.config.tasks.maxOutputMb;
    if (exit.tooLarge) return new TaskFailure('output_too_large', `the agent's output file passed SANDBOXD_TASK_MAX_OUTPUT_MB (${cap} MiB), so the agent was killed; ask for less output or raise the limit`);
    const n = this.normaliser;
    if (n.error) return new TaskFailure('agent_error', n.error);
    const tail = exit.stderr ? `: ${exit.stderr.split('\n').slice(-5).join(' ').slice(-500)}` : '';
    if (exit.code === null) return new TaskFailure('agent_error', `the agent ended without an exit status (killed?)${tail}`);
    if (exit.code !== 0) return new TaskFailure('agent_error', `the agent exited with code ${exit.code}${tail}`);
    if (!n.finished) return new TaskFailure('agent_error', `the agent ended without a result${tail || '; check the provider key and model in the task or sandbox env'}`);
    return undefined;
  }

  private stopFailure(reason = this.store.tasks.get(this.task.id)?.cancelReason ?? 'cancelled'): TaskFailure {
    return reason === 'agent_timeout'
      ? new TaskFailure('agent_timeout', `the agent ran longer than timeout_s (${this.task.timeoutS} s) and was stopped; raise timeout_s or split the prompt`)
      : new TaskFailure('cancelled', 'the task was cancelled');
  }

  private async buildCheck(): Promise<TaskOutcome['build']> {
    const limit = this.config.tasks.buildTimeoutS;
    const r = await this.script(BUILD_CHECK, [String(limit)], (limit + 30) * 1000, (s) => (this.building = s));
    this.building = undefined;
    if (r.code === NO_BUILD) return null;
    const tail = r.stdout.trim();
    if (r.code === 0) return { ok: true };
    return { ok: false, message: r.code === 124 ? `npm run build did not finish within ${limit} s` : `npm run build exited with code ${r.code}${tail ? `:\n${tail}` : ''}` };
  }

  private async healthCheck(): Promise<TaskOutcome['preview']> {
    const port = this.store.sandboxes.get(this.task.sandboxId)?.ports[0];
    if (port === undefined) return null;
    const wait = this.config.tasks.healthWaitS;
    const r = await this.script(HEALTH_CHECK, [String(port), String(wait)], (wait + 15) * 1000);
    const status = Number(r.stdout.trim());
    return { port, status: status >= 100 ? status : null };
  }

  private async filesChanged(): Promise<Pick<TaskOutcome, 'files_changed' | 'files_changed_truncated'>> {
    // Set by this run's checkpoint, or loaded with the row when re-attaching.
    const { checkpoint } = this.task;
    if (!checkpoint) return { files_changed: null };
    const r = await this.script(FILES_CHANGED, [checkpoint]).catch(() => undefined);
    if (!r || r.code !== 0) return { files_changed: null };
    const paths = [...new Set(r.stdout.split('\n').filter(Boolean))];
    if (paths.length <= MAX_FILES_CHANGED) return { files_changed: paths.sort() };
    return { files_changed: paths.slice(0, MAX_FILES_CHANGED).sort(), files_changed_truncated: true };
  }

  private async outcome(failure: TaskFailure | undefined, extra: Partial<TaskOutcome> = {}): Promise<TaskOutcome> {
    const n = this.normaliser;
    const files = await this.filesChanged().catch(() => ({ files_changed: null }));
    const status = !failure ? 'succeeded' : failure.reason === 'cancelled' ? 'cancelled' : 'failed';
    const outcome: TaskOutcome = {
      status, reason: failure?.reason ?? null, error: failure?.message ?? null, message: n.finalMessage,
      ...files, usage: n.usage, build: null, preview: null,
      checkpoint: this.task.checkpoint,
      duration_ms: Date.now() - (this.task.startedAt ?? this.task.createdAt), ...extra,
    };
    return this.redact(outcome);
  }

  /** The outcome of a task that could not go on; the container's state decides between unavailable and internal. */
  private async failed(err: unknown): Promise<TaskOutcome> {
    if (err instanceof TaskFailure) return this.outcome(err);
    const live = await this.runtime.inspect(this.task.sandboxId).catch(() => undefined);
    if (!live?.running) return this.outcome(new TaskFailure('sandbox_unavailable', 'the sandbox stopped while the task ran; start it and submit the task again'));
    if (err !== this.crashed) this.log.error('task failed', { task: this.task.id, error: errorMessage(err) });
    return this.outcome(new TaskFailure('internal', `the task failed inside sandboxd: ${errorMessage(err)}`));
  }

  private emit(bodies: TaskEventBody[], move: { linesRead?: number; phase?: TaskPhase; checkpoint?: string | null } = {}): void {
    const events = this.store.tasks.append(this.task.id, bodies.map(this.redact), move);
    if (!events.length) return;
    this.budget.stored(events.at(-1)!.seq);
    this.post({ t: 'events', events });
  }

  private post(m: TaskMessage): void {
    this.port.postMessage(m);
  }

  /** Runs a sandbox-side script as the sandbox user and collects its output. */
  private async script(script: string, args: string[], timeoutMs = SCRIPT_TIMEOUT_MS, started?: (s: ExecSession) => void): Promise<{ code: number; stdout: string; stderr: string }> {
    const session = await this.runtime.exec(this.task.sandboxId, { cmd: ['/bin/sh', '-c', script, ...args], cwd: HOME });
    started?.(session);
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const size = { stdout: 0, stderr: 0 };
    session.onOutput((stream, chunk) => {
      if (size[stream] >= SCRIPT_OUTPUT_MAX) return;
      size[stream] += chunk.length;
      out[stream].push(chunk);
    });
    const timer = setTimeout(() => void session.kill('KILL').catch(() => undefined), timeoutMs);
    try {
      const { exitCode } = await session.done;
      return { code: exitCode, stdout: Buffer.concat(out.stdout).toString('utf8'), stderr: Buffer.concat(out.stderr).toString('utf8') };
    } finally {
      clearTimeout(timer);
    }
  }
}
