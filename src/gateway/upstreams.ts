import { Agent } from 'node:http';

/** Why a pool was destroyed: its sandbox stopped, moved (restarted, new address), fell out of the bound, went unreachable, or the gateway closed. */
export type DropReason = 'stopped' | 'moved' | 'evicted' | 'unreachable' | 'closed';

/** One sandbox's known address at one row version, and the keep-alive pool that talks to it. */
interface Entry {
  host: string;
  version: number;
  agent: Agent;
}

/**
 * Upstream connection pools, one per sandbox, keyed by its id, address and row version. Any start or stop
 * bumps the version, so a sandbox whose container restarted (perhaps on an address another sandbox had a
 * moment ago) gets a fresh pool, and the old pool's sockets are destroyed: a pooled socket can never carry
 * one sandbox's visitor to another sandbox. At most 64 connections per sandbox port at once, the rest wait
 * their turn in the agent: a burst at a just-woken app (200 requests held during a wake) would otherwise
 * overflow a small accept queue (busybox httpd's is 9), and every dropped connect costs seconds of SYN
 * retries. Long-lived responses (SSE) count against the 64; WebSockets do not (they bypass the pools).
 */
export class Upstreams {
  private entries = new Map<string, Entry>();
  private maxEntries: number;
  private onDrop: (reason: DropReason) => void;

  /** `onDrop` hears of every pool destroyed, and why (counted in /metrics). */
  constructor(maxEntries = 4096, onDrop: (reason: DropReason) => void = () => undefined) {
    this.maxEntries = maxEntries;
    this.onDrop = onDrop;
  }

  /** The cached address and pool for this sandbox at this row version, if any. */
  get(sandboxId: string, version: number): Entry | undefined {
    const e = this.entries.get(sandboxId);
    return e && e.version === version ? e : undefined;
  }

  /** The pool for this sandbox at this address and version; a different address or version drops the old pool first. */
  bind(sandboxId: string, version: number, host: string): Entry {
    const old = this.entries.get(sandboxId);
    if (old && old.version === version && old.host === host) return old;
    // A request that read the row before a restart must not tear down the newer pool: it joins it.
    if (old && old.version > version) return old;
    if (old) this.drop(sandboxId, 'moved');
    // Bounded: the oldest entry goes first (its sandbox simply looks its address up again).
    while (this.entries.size >= this.maxEntries) this.drop(this.entries.keys().next().value!, 'evicted');
    // `timeout` closes pooled sockets left idle that long (Node's agent destroys a free socket on it); on a
    // socket in use it only emits 'timeout', deliberately unheard: proxy.ts bounds requests in use itself.
    const entry = { host, version, agent: new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 60_000 }) };
    this.entries.set(sandboxId, entry);
    return entry;
  }

  /** Forgets a sandbox's address and destroys its pooled sockets (in-flight requests on them end). */
  drop(sandboxId: string, reason: DropReason): void {
    const e = this.entries.get(sandboxId);
    if (!e) return;
    this.entries.delete(sandboxId);
    e.agent.destroy();
    this.onDrop(reason);
  }

  /** Drops every pool whose sandbox no longer runs at the version it was made for. */
  sweep(current: (sandboxId: string) => { status: string; version: number } | undefined): void {
    for (const [id, e] of [...this.entries]) {
      const rec = current(id);
      if (!rec || rec.status !== 'running') this.drop(id, 'stopped');
      else if (rec.version !== e.version) this.drop(id, 'moved');
    }
  }

  /** How many sandboxes have a pool (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Destroys every pool. */
  close(): void {
    for (const id of [...this.entries.keys()]) this.drop(id, 'closed');
  }
}
