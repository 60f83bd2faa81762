import { connect } from 'node:net';
import { AppError } from '../errors.ts';
import { errorMessage } from '../log.ts';
import type { Actor } from '../sandboxes/lifecycle.ts';
import { VISITOR_WAKES_FROM, WakeRefused, type Wakes } from '../sandboxes/wake.ts';
import type { PreviewTargets } from '../sandboxes/previews.ts';

const POLL_MS = 100;

/** Who a preview visit wakes a sandbox as, in the audit log. */
const GATEWAY: Actor = { name: 'gateway', requestId: 'gateway' };

/** The answer to a preview of a sandbox that is down on purpose (destroyed) or after a failure (error). */
export function sandboxDown(sandboxId: string, status: string): AppError {
  return new AppError('sandbox_down', `this sandbox is ${status}; a preview request does not start it: its owner (or an admin) starts it with POST /v1/sandboxes/${sandboxId}/start`, { status });
}

/** True once something accepts TCP connections at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
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
  private ports = new Map<string, Promise<string>>();
  private targets: PreviewTargets;
  private wakes: Wakes;

  constructor(targets: PreviewTargets, wakes: Wakes) {
    this.targets = targets;
    this.wakes = wakes;
  }

  /** Starts the sandbox if needed and answers its address once `port` accepts connections (or the deadline passes). */
  wake(sandboxId: string, port: number, deadline: number): Promise<string> {
    const key = `${sandboxId}:${port}`;
    let waiting = this.ports.get(key);
    if (!waiting) {
      // The start itself is shared by every waiter of the sandbox in Wakes; this shares the wait per port.
      waiting = this.start(sandboxId, port).then((host) => this.untilAccepting(host, port, deadline));
      this.ports.set(key, waiting);
      const forget = () => this.ports.delete(key);
      waiting.then(forget, forget);
    }
    return waiting;
  }

  /** The sandbox's host once it runs. */
  private async start(sandboxId: string, port: number): Promise<string> {
    try {
      // The shared wake (sandboxes/wake.ts) waits out an idle stop under way, then starts it again.
      await this.wakes.awake(sandboxId, 'wake:http', GATEWAY, { from: VISITOR_WAKES_FROM, verify: true });
    } catch (err) {
      if (err instanceof WakeRefused) throw sandboxDown(sandboxId, err.sandboxStatus);
      const now = this.targets.get(sandboxId)?.status;
      if (now === 'destroyed' || now === 'error') throw sandboxDown(sandboxId, now);
      // A visitor is not the owner: it learns which quota keeps the sandbox asleep, not the tenant's numbers.
      if (err instanceof AppError && err.code === 'quota_exceeded') {
        throw new AppError('quota_exceeded', `this sandbox stays asleep: its owner is at its ${String(err.details?.quota)} quota; the owner can stop another sandbox, or start this one once there is room`, { quota: err.details?.quota });
      }
      throw err instanceof AppError ? err : new AppError('sandbox_unavailable', errorMessage(err));
    }
    const at = await this.targets.endpoint(sandboxId, port);
    if (!at) throw new AppError('sandbox_unavailable', 'the sandbox started but has no network address');
    return at.host;
  }

  private async untilAccepting(host: string, port: number, deadline: number): Promise<string> {
    while (!(await accepts(host, port))) {
      if (Date.now() >= deadline) throw new AppError('not_ready', `the sandbox is awake but nothing listens on port ${port} yet`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return host;
  }
}
