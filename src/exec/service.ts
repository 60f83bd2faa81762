import { posix } from 'node:path';
import type { ExecSpec } from '../model/exec.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import type { WorkerPool } from '../pool.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { Actor } from '../sandboxes/lifecycle.ts';
import type { Wakes } from '../sandboxes/wake.ts';
import type { AuditLog } from '../store/audit.ts';
import type { ExecHandle } from './handle.ts';
import type { ExecTask } from './protocol.ts';
import type { SessionKind, SessionLimits } from './sessions.ts';

const HOME = '/home/sandbox';
const APP_DIR = `${HOME}/workspace/app`;

/** Where a command runs: relative paths are under ~/workspace/app, `~/` is home, absolute stays absolute. */
export function resolveCwd(cwd: string | undefined): string {
  if (cwd === undefined) return APP_DIR;
  if (cwd === '~') return HOME;
  if (cwd.startsWith('~/')) return posix.normalize(`${HOME}/${cwd.slice(2)}`);
  return posix.isAbsolute(cwd) ? posix.normalize(cwd) : posix.normalize(`${APP_DIR}/${cwd}`);
}

/** A command as a client asks for it, before the sandbox is woken. */
export interface CommandRequest {
  cmd: string[];
  env?: Record<string, string>;
  cwd?: string;
}

/** Commands in sandboxes for the API's exec, WebSocket exec and terminal: admission, the wake, the run. */
export class Exec {
  private pool: WorkerPool;
  private sessions: SessionLimits;
  private wakes: Wakes;
  private activity: Activity;
  private audit: AuditLog;

  constructor(deps: { pool: WorkerPool; sessions: SessionLimits; wakes: Wakes; activity: Activity; audit: AuditLog }) {
    this.pool = deps.pool;
    this.sessions = deps.sessions;
    this.wakes = deps.wakes;
    this.activity = deps.activity;
    this.audit = deps.audit;
  }

  /**
   * Takes a session slot for a command in this sandbox, before anything wakes or runs: throws `rate_limited`
   * (429 + Retry-After) when the exec pool, the sandbox's or the tenant's cap is full. Call the answer (once)
   * when the session ends.
   */
  admit(rec: SandboxRecord, kind: SessionKind): () => void {
    this.sessions.counted(kind, () => this.pool.assertRoom());
    return this.sessions.take(rec, kind);
  }

  /** Wakes the sandbox if it sleeps (waiting out a stop under way), records the use, and answers the spec to run. */
  async prepare(rec: SandboxRecord, req: CommandRequest, actor: Actor, extra: Partial<ExecSpec> = {}): Promise<{ spec: ExecSpec; wake: boolean }> {
    const wake = (await this.wakes.awake(rec.id, 'wake:api', actor)).woke;
    this.activity.touch(rec.id, extra.tty ? 'terminal' : 'exec');
    this.audit.record({
      actor: actor.name, action: 'sandbox.exec', sandboxId: rec.id, requestId: actor.requestId, outcome: 'ok',
      detail: { argv0: req.cmd[0], args: req.cmd.length - 1, tty: extra.tty ?? false },
    });
    return { spec: { cmd: req.cmd, cwd: resolveCwd(req.cwd), ...(req.env ? { env: req.env } : {}), ...extra }, wake };
  }

  /** Runs a command in a worker; see WorkerPool.exec for the queue and its refusals. */
  run(task: ExecTask): ExecHandle {
    return this.pool.exec(task);
  }
}
