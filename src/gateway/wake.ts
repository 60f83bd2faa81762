import { connect } from 'node:net';
import { AppError } from '../errors.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { Lifecycle } from '../sandboxes/lifecycle.ts';
import type { SandboxStore, Status } from '../store/sandboxes.ts';

const POLL_MS = 100;

/**
 * The only statuses a preview request may start a sandbox from: `stopped` (asleep) and `running` (its
 * container died under it). `destroyed` and `error` were someone's decision or a failure to look at: they
 * stay down until an authorized `POST /v1/sandboxes/{id}/start`.
 */
export const WAKES_FROM: Status[] = ['running', 'stopped'];

/** The answer to a preview of a sandbox that is down on purpose (destroyed) or after a failure (error). */
export function sandboxDown(sandboxId: string, status: string): AppError {
  return new AppError('sandbox_down', `this sandbox is ${status}; a preview request does not start it: its owner (or an admin) starts it with POST /v1/sandboxes/${sandboxId}/start`, { status });
}

/** True once something accepts TCP connections at ip:port. */
function accepts(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port });
    const done = (ok: boolean) => (sock.destroy(), resolve(ok));
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Wakes sleeping sandboxes for the gateway. Every request for the same sandbox shares one start, and every
 * request for the same port shares one wait for it to accept connections; a failure reaches every waiter.
 */
export class Waker {
  private starts = new Map<string, Promise<string>>();
  private ports = new Map<string, Promise<string>>();
  private sandboxes: SandboxStore;
  private lifecycle: Lifecycle;
  private runtime: Runtime;
  private stopGraceS: number;
  private log: Logger;

  constructor(sandboxes: SandboxStore, lifecycle: Lifecycle, runtime: Runtime, stopGraceS: number, log: Logger) {
    this.sandboxes = sandboxes;
    this.lifecycle = lifecycle;
    this.runtime = runtime;
    this.stopGraceS = stopGraceS;
    this.log = log;
  }

  /** Starts the sandbox if needed and answers its address once `port` accepts connections (or the deadline passes). */
  wake(sandboxId: string, port: number, deadline: number): Promise<string> {
    const key = `${sandboxId}:${port}`;
    let waiting = this.ports.get(key);
    if (!waiting) {
      waiting = this.running(sandboxId).then((ip) => this.untilAccepting(ip, port, deadline));
      this.ports.set(key, waiting);
      const forget = () => this.ports.delete(key);
      waiting.then(forget, forget);
    }
    return waiting;
  }

  private running(sandboxId: string): Promise<string> {
    let start = this.starts.get(sandboxId);
    if (!start) {
      start = this.start(sandboxId);
      this.starts.set(sandboxId, start);
      const forget = () => this.starts.delete(sandboxId);
      start.then(forget, forget);
    }
    return start;
  }

  private async start(sandboxId: string): Promise<string> {
    // The idle reaper may be stopping it this very moment: let that finish, then start it again.
    const settle = Date.now() + (this.stopGraceS + 10) * 1000;
    let rec = this.sandboxes.get(sandboxId);
    while (rec && ['stopping', 'starting', 'creating', 'destroying'].includes(rec.status) && Date.now() < settle) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      rec = this.sandboxes.get(sandboxId);
    }
    if (!rec || rec.status === 'purging') throw new AppError('not_found', 'this sandbox no longer exists');
    if (!WAKES_FROM.includes(rec.status)) throw sandboxDown(sandboxId, rec.status);
    const live = await this.runtime.inspect(sandboxId);
    if (rec.status !== 'running' || !live?.running) {
      this.log.info('waking for a preview request', { sandbox: sandboxId, from: rec.status });
      try {
        // Compare-and-set on these statuses: a destroy that lands between the look above and this start wins.
        await this.lifecycle.start(sandboxId, 'wake:http', { name: 'gateway', requestId: 'gateway' }, WAKES_FROM);
      } catch (err) {
        const now = this.sandboxes.get(sandboxId)?.status;
        if (now === 'destroyed' || now === 'error') throw sandboxDown(sandboxId, now);
        // A visitor is not the owner: it learns which quota keeps the sandbox asleep, not the tenant's numbers.
        if (err instanceof AppError && err.code === 'quota_exceeded') {
          throw new AppError('quota_exceeded', `this sandbox stays asleep: its owner is at its ${String(err.details?.quota)} quota; the owner can stop another sandbox, or start this one once there is room`, { quota: err.details?.quota });
        }
        throw err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err));
      }
    }
    const ip = (await this.runtime.inspect(sandboxId))?.ip;
    if (!ip) throw new AppError('sandbox_unavailable', 'the sandbox started but has no network address');
    return ip;
  }

  private async untilAccepting(ip: string, port: number, deadline: number): Promise<string> {
    while (!(await accepts(ip, port))) {
      if (Date.now() >= deadline) throw new AppError('not_ready', `the sandbox is awake but nothing listens on port ${port} yet`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return ip;
  }
}
