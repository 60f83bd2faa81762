import type { DiskUsage, ListFilter, LiveState, SandboxRecord } from '../model/sandbox.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { SandboxStore } from '../store/sandboxes.ts';
import type { Workspaces } from '../workspaces/workspaces.ts';

/** Reads of sandboxes for the transports: records by id, name and filter, and their live state. */
export class SandboxDirectory {
  private sandboxes: SandboxStore;
  private runtime: Runtime;
  private workspaces: Workspaces;

  constructor(sandboxes: SandboxStore, runtime: Runtime, workspaces: Workspaces) {
    this.sandboxes = sandboxes;
    this.runtime = runtime;
    this.workspaces = workspaces;
  }

  /** The record of this id, if any (whoever owns it: the caller checks who may see it). */
  byId(id: string): SandboxRecord | undefined {
    return this.sandboxes.get(id);
  }

  /** The record of this name within one tenant, if any. */
  byName(name: string, owner: string): SandboxRecord | undefined {
    return this.sandboxes.getByName(name, owner);
  }

  /** Records matching a filter, newest first. */
  list(filter: ListFilter): SandboxRecord[] {
    return this.sandboxes.list(filter);
  }

  /** The live instance (null when none exists or the runtime cannot say) and the workspace's disk use. */
  async live(rec: SandboxRecord): Promise<{ live: LiveState | null; disk: DiskUsage | null }> {
    const [live, disk] = await Promise.all([this.runtime.inspect(rec.id).catch(() => undefined), this.workspaces.diskUsage(rec.id)]);
    return { live: live ?? null, disk };
  }
}
