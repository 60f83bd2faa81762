import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { ExecHandle } from '../exec/handle.ts';
import { execFailure } from '../exec/failure.ts';
import type { ExecResult } from '../exec/protocol.ts';
import type { SessionLimits } from '../exec/sessions.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { WorkerPool } from '../pool.ts';
import type { ExecSpec } from '../model/exec.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { LAUNCH_DETACHED, PROCESS_LOG_DIR, PROCESS_STATUS, SIGNAL_PID } from '../runtime/sandbox-scripts.ts';
import type { ProcessRecord } from '../model/process.ts';
import type { ProcessStore } from '../store/processes.ts';

/** What a status or launch script may answer at most (a line per process). */
const SCRIPT_OUTPUT_MAX = 1 << 20;
const KILL_GRACE_MS = 2000;
/** The exit code of READ_LOG when the log is not a regular file (a FIFO or a device put in its place). */
export const LOG_NOT_A_FILE = 3;
/**
 * The end of a process's log, read only if it is a regular file (a FIFO would block the read, a device
 * never end), and under `timeout` for one swapped in between the test and the open. stderr is dropped:
 * the output is streamed raw to the client.
 */
const READ_LOG = [
  `f="${PROCESS_LOG_DIR}/$0.log"`,
  `[ -L "$f" ] && exit ${LOG_NOT_A_FILE}`,
  '[ -e "$f" ] || exit 0',
  `[ -f "$f" ] || exit ${LOG_NOT_A_FILE}`,
  'if command -v timeout >/dev/null 2>&1; then exec timeout 10 tail -c "$1" "$f" 2>/dev/null; fi',
  'exec tail -c "$1" "$f" 2>/dev/null',
].join('\n');

/** A background process's state as the sandbox reports it; `gone` ended without an exit code (killed, or the sandbox stopped). */
export interface ProcessState {
  status: 'running' | 'exited' | 'gone';
  exitCode: number | null;
}

/** Background processes started with `detach: true`: launched, listed, their logs read and ended inside the sandbox. */
export class Processes {
  private pool: WorkerPool;
  private runtime: Runtime;
  private store: ProcessStore;
  private sessions: SessionLimits;

  constructor(deps: { pool: WorkerPool; runtime: Runtime; store: ProcessStore; sessions: SessionLimits }) {
    this.pool = deps.pool;
    this.runtime = deps.runtime;
    this.store = deps.store;
    this.sessions = deps.sessions;
  }

  /**
   * Starts a command in the background and answers its record at once. The caller holds a session slot for
   * the launch; the sandbox is asked which of its background processes still run first, so they count
   * against the caps (429 past them), and the new one is counted after.
   */
  async launch(rec: SandboxRecord, spec: ExecSpec): Promise<ProcessRecord> {
    const running = await this.refreshBackground(rec);
    this.sessions.recheckFor(rec, 'process');
    const key = randomBytes(8).toString('hex');
    const startedAt = Date.now();
    const r = await this.runScript(rec.id, LAUNCH_DETACHED, [key, ...spec.cmd], spec.cwd);
    const pid = Number(r.stdout.trim());
    if (r.exit_code !== 0 || !Number.isInteger(pid) || pid <= 0) {
      throw new AppError('invalid_request', `the process could not start: ${r.stderr.trim() || `exit code ${r.exit_code}`}`, { field: 'cwd' });
    }
    const proc: ProcessRecord = { sandboxId: rec.id, pid, key, cmd: spec.cmd, cwd: spec.cwd, startedAt };
    this.store.insert(proc);
    this.sessions.setBackground(rec, running + 1);
    return proc;
  }

  /** Every recorded process of the sandbox, newest first, with its state; the caps learn how many still run. */
  async list(rec: SandboxRecord): Promise<{ proc: ProcessRecord; state: ProcessState }[]> {
    return (await this.refreshed(rec)).listed;
  }

  /** One recorded process, or `not_found`. */
  find(rec: SandboxRecord, pid: number): ProcessRecord {
    const proc = this.store.get(rec.id, pid);
    if (!proc) throw new AppError('not_found', `no background process ${pid} in this sandbox`);
    return proc;
  }

  /**
   * Starts reading the last `tail` bytes of a process's log; the caller streams the handle's output, paced by
   * its client. Its result's exit code is LOG_NOT_A_FILE when something replaced the log with a non-file.
   */
  async log(rec: SandboxRecord, proc: ProcessRecord, tail: number): Promise<ExecHandle> {
    const live = await this.runtime.inspect(rec.id);
    if (!live?.running) throw new AppError('conflict', 'the sandbox is stopped: start it to read the logs its processes left in ~/.sandboxed/processes');
    return this.pool.exec({ sandboxId: rec.id, spec: { cmd: ['/bin/sh', '-c', READ_LOG, proc.key, String(tail)], cwd: '/home/sandbox' }, capBytes: 0, stream: 'raw', timeoutMs: 30_000 });
  }

  /** Ends a process and everything it started: TERM, then KILL after 2 s; answers its state once it ended. */
  async kill(rec: SandboxRecord, proc: ProcessRecord): Promise<ProcessState> {
    let state = (await this.statuses(rec.id, [proc])).get(proc)!;
    if (state.status === 'running') {
      await this.runScript(rec.id, SIGNAL_PID, ['signal', String(proc.pid), 'TERM']);
      const deadline = Date.now() + KILL_GRACE_MS;
      while (state.status === 'running' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        state = (await this.statuses(rec.id, [proc])).get(proc)!;
      }
      if (state.status === 'running') {
        await this.runScript(rec.id, SIGNAL_PID, ['signal', String(proc.pid), 'KILL']);
        state = (await this.statuses(rec.id, [proc])).get(proc)!;
      }
    }
    await this.refreshBackground(rec).catch(() => undefined); // the count is advisory; the kill has happened
    return state;
  }

  /** Asks the sandbox how many of its recorded background processes still run, and records that for the caps. */
  private async refreshBackground(rec: SandboxRecord): Promise<number> {
    return (await this.refreshed(rec)).running;
  }

  /** Every recorded process with its state, newest first; the caps learn how many still run. */
  private async refreshed(rec: SandboxRecord): Promise<{ listed: { proc: ProcessRecord; state: ProcessState }[]; running: number }> {
    const procs = this.store.list(rec.id);
    const states = await this.statuses(rec.id, procs);
    const running = [...states.values()].filter((s) => s.status === 'running').length;
    this.sessions.setBackground(rec, running);
    return { listed: procs.map((proc) => ({ proc, state: states.get(proc)! })), running };
  }

  /** Asks the sandbox which of these processes still run; a container started after a process means it is gone. */
  private async statuses(sandboxId: string, procs: ProcessRecord[]): Promise<Map<ProcessRecord, ProcessState>> {
    const out = new Map<ProcessRecord, ProcessState>();
    for (const p of procs) out.set(p, { status: 'gone', exitCode: null });
    const live = await this.runtime.inspect(sandboxId);
    if (!live?.running || !live.startedAt) return out;
    const containerStart = Date.parse(live.startedAt);
    const candidates = procs.filter((p) => p.startedAt >= containerStart - 1000);
    if (!candidates.length) return out;
    const r = await this.runScript(sandboxId, PROCESS_STATUS, ['status', ...candidates.map((p) => `${p.pid}:${p.key}`)]);
    const lines = r.stdout.trim().split('\n');
    candidates.forEach((p, i) => {
      const [, state, code] = (lines[i] ?? '').split(' ');
      if (state === 'running') out.set(p, { status: 'running', exitCode: null });
      else if (state === 'exited') out.set(p, { status: 'exited', exitCode: Number(code) });
    });
    return out;
  }

  /** Runs one of the sandbox-side scripts as the sandbox user (`args[0]` is the script's $0) and answers its result. */
  private async runScript(sandboxId: string, script: string, args: string[], cwd = '/home/sandbox'): Promise<ExecResult> {
    const handle = this.pool.exec({ sandboxId, spec: { cmd: ['/bin/sh', '-c', script, ...args], cwd }, capBytes: SCRIPT_OUTPUT_MAX, timeoutMs: 30_000 });
    try {
      return await handle.result;
    } catch (err) {
      throw execFailure(err);
    }
  }
}
