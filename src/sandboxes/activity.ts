import { randomUUID } from 'node:crypto';
import type { ActivitySource, ActivityStore, LeaseKind } from '../store/activity.ts';

/** Writes of the same source for the same sandbox closer together than this are dropped. */
const TOUCH_EVERY_MS = 1000;

/**
 * Activity on the main thread: cheap to call on every proxied request (throttled in memory), persisted so
 * the idle reaper in its worker sees it. Leases hold a sandbox awake until released.
 */
export class Activity {
  private store: ActivityStore;
  private recent = new Map<string, number>();

  constructor(store: ActivityStore) {
    this.store = store;
  }

  touch(sandboxId: string, source: ActivitySource): void {
    const now = Date.now();
    const key = `${sandboxId}:${source}`;
    if (now - (this.recent.get(key) ?? 0) < TOUCH_EVERY_MS) return;
    this.recent.set(key, now);
    this.store.touch(sandboxId, source, now);
  }

  /** Opens a lease; `release` is idempotent and records activity as the lease ends. */
  openLease(sandboxId: string, kind: LeaseKind): { release(): void } {
    const id = randomUUID();
    this.store.openLease(id, sandboxId, kind, Date.now());
    let open = true;
    return {
      release: () => {
        if (!open) return;
        open = false;
        this.store.closeLease(id);
        this.store.touch(sandboxId, kind === 'preview_ws' ? 'gateway' : kind === 'task' ? 'task' : kind === 'terminal' ? 'terminal' : 'exec', Date.now());
      },
    };
  }
}
