import type { SandboxRecord } from '../model/sandbox.ts';
import type { Endpoint, Runtime } from '../runtime/runtime.ts';
import type { SandboxStore } from '../store/sandboxes.ts';

/** Records kept for the gateway's hot path; past this many the least recently used is dropped. */
const CACHE_MAX = 4096;

/**
 * What the preview gateway needs of sandboxes on every request: the record a host names, and where its app
 * answers. Records are kept in memory and re-read only when the row's version or creation time moved on
 * (every status or address change bumps the version, in whichever thread made it; a re-created id has a new
 * creation time), so a request costs one indexed integer read
 * instead of a full row with its JSON columns.
 */
export class PreviewTargets {
  private sandboxes: SandboxStore;
  private runtime: Runtime;
  private cache = new Map<string, SandboxRecord>();

  constructor(sandboxes: SandboxStore, runtime: Runtime) {
    this.sandboxes = sandboxes;
    this.runtime = runtime;
  }

  /** The current record of this sandbox, or undefined when it does not exist (any more). */
  get(id: string): SandboxRecord | undefined {
    const stamp = this.sandboxes.stampOf(id);
    if (!stamp) {
      this.cache.delete(id);
      return undefined;
    }
    const hit = this.cache.get(id);
    // Re-inserted on every use: the Map's order is then least recently used first.
    this.cache.delete(id);
    // The creation time too: a purged id created again (another visibility, other ports, another owner) counts its versions from 1.
    const rec = hit && hit.version === stamp.version && hit.createdAt === stamp.createdAt ? hit : this.sandboxes.get(id);
    if (!rec) return undefined;
    this.cache.set(id, rec);
    if (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    return rec;
  }

  /** Where one of its ports answers while it runs; null when it does not run. */
  endpoint(id: string, port: number): Promise<Endpoint | null> {
    return this.runtime.endpoint(id, port);
  }
}
