import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { SandboxRecord, Status } from '../model/sandbox.ts';
import type { SandboxStore } from '../store/sandboxes.ts';
import type { Actor, Lifecycle } from './lifecycle.ts';

const POLL_MS = 50;

/** Statuses another writer moves on by itself (a reaper's stop, a start, a create, a destroy): a wake waits them out. */
const SETTLING: readonly Status[] = ['stopping', 'starting', 'creating', 'destroying'];

/** What the owner's own use (exec, terminal, task, files) may wake from: anything a start may start. */
export const OWNER_WAKES_FROM: readonly Status[] = ['running', 'stopped', 'error', 'destroyed'];

/**
 * The only statuses a preview request may start a sandbox from: `stopped` (asleep) and `running` (its
 * container died under it). `destroyed` and `error` were someone's decision or a failure to look at: they
 * stay down until an authorized `POST /v1/sandboxes/{id}/start`.
 */
export const VISITOR_WAKES_FROM: readonly Status[] = ['running', 'stopped'];

/** A wake's answer: the record now running, and whether this call found it asleep. */
export interface Woken {
  record: SandboxRecord;
  woke: boolean;
}

/** The answer to a wake from a status the caller may not wake from; `status` says which. */
export class WakeRefused extends AppError {
  readonly sandboxStatus: Status;
  constructor(status: Status) {
    super('conflict', `the sandbox is ${status}; start it with POST /v1/sandboxes/{id}/start`, { status });
    this.sandboxStatus = status;
  }
}

/**
 * The one wake, used by the gateway, exec, terminals, tasks and the API: a sandbox being stopped (the idle
 * reaper, memory pressure) or started is waited for, then started again; concurrent wakes of one sandbox
 * share one start, and its failure reaches every waiter.
 */
export class Wakes {
  private starts = new Map<string, Promise<SandboxRecord>>();
  private sandboxes: SandboxStore;
  private lifecycle: Lifecycle;
  private runtime: Runtime;
  private settleMs: number;
  private log: Logger;

  constructor(sandboxes: SandboxStore, lifecycle: Lifecycle, runtime: Runtime, stopGraceS: number, log: Logger) {
    this.sandboxes = sandboxes;
    this.lifecycle = lifecycle;
    this.runtime = runtime;
    // A stop under way ends within its grace period plus the engine's own time to answer.
    this.settleMs = (stopGraceS + 10) * 1000;
    this.log = log;
  }

  /**
   * Answers the sandbox running: at once when it runs, after a start when it sleeps (waiting out a stop in
   * progress first). A `running` row is taken at its word unless `verify` asks the runtime too (a preview
   * that found no endpoint, an explicit start): an exec or task into a container that died meanwhile fails
   * on its own, and the reconciler records the death.
   */
  async awake(id: string, reason: string, actor: Actor, opts: { from?: readonly Status[]; verify?: boolean } = {}): Promise<Woken> {
    const from = opts.from ?? OWNER_WAKES_FROM;
    const rec = await this.settled(id);
    if (!rec || rec.status === 'purging') throw new AppError('not_found', 'this sandbox no longer exists');
    if (!from.includes(rec.status)) throw new WakeRefused(rec.status);
    if (rec.status === 'running' && (!opts.verify || (await this.runtime.inspect(id))?.running)) return { record: rec, woke: false };
    const key = `${id}:${from.join(',')}`;
    let start = this.starts.get(key);
    if (!start) {
      this.log.info('waking', { sandbox: id, from: rec.status, reason });
      // Compare-and-set on `from`: a destroy that lands between the look above and this start wins.
      start = this.lifecycle.start(id, reason, actor, [...from]);
      this.starts.set(key, start);
      const forget = () => this.starts.delete(key);
      start.then(forget, forget);
    }
    return { record: await start, woke: true };
  }

  /** The row once no other writer is moving it (or the settle time has passed). */
  private async settled(id: string): Promise<SandboxRecord | undefined> {
    const until = Date.now() + this.settleMs;
    let rec = this.sandboxes.get(id);
    while (rec && SETTLING.includes(rec.status) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      rec = this.sandboxes.get(id);
    }
    return rec;
  }
}
