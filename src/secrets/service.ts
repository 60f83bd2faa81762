import type { Caller } from '../auth/authenticator.ts';
import { AppError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { SecretEntry } from '../store/secrets.ts';
import type { SecretBox } from './box.ts';

/** The owner of secrets every tenant's sandboxes may use (set by an admin); no tenant can be named so. */
export const GLOBAL_OWNER = '*';

/** Secrets one tenant (or the global scope) may keep: provider keys and tokens, not a store for data. */
export const MAX_SECRETS = 100;

/** A secret as the API shows it: never its value. */
export interface SecretView {
  name: string;
  scope: 'tenant' | 'global';
  created_at: string;
  updated_at: string;
}

const view = (e: SecretEntry): SecretView => ({
  name: e.name, scope: e.owner === GLOBAL_OWNER ? 'global' : 'tenant', created_at: new Date(e.createdAt).toISOString(), updated_at: new Date(e.updatedAt).toISOString(),
});

/**
 * Write-only secrets, per tenant, plus global ones an admin sets: sealed at rest (SecretBox), listed by
 * name only, and read back in the clear only by the daemon itself (`valueFor`), never through the API.
 */
export class Secrets {
  private store: Store;
  private box: SecretBox;

  constructor(store: Store, box: SecretBox) {
    this.store = store;
    this.box = box;
  }

  /** Whose secrets a call touches: the caller's own, or the global ones (admins only). */
  private ownerFor(caller: Caller, scope: 'tenant' | 'global'): string {
    if (scope === 'tenant') return caller.name;
    if (!caller.admin) throw new AppError('admin_only', 'query.scope: only an admin token may set or delete global secrets; drop scope=global to use your own', { field: 'query.scope' });
    return GLOBAL_OWNER;
  }

  /** Sets (or replaces) a secret; answers it without its value. */
  put(caller: Caller, name: string, value: string, scope: 'tenant' | 'global', requestId: string): SecretView {
    const owner = this.ownerFor(caller, scope);
    // A new name past the cap is refused (replacing one is not): the data disk is every tenant's.
    const used = this.store.secrets.count(owner);
    if (used >= MAX_SECRETS && !this.store.secrets.entry(owner, name)) {
      throw new AppError('quota_exceeded', `this ${scope === 'global' ? 'global scope' : 'tenant'} already keeps ${used} secrets, the most allowed; delete one first`, { quota: 'secrets', limit: MAX_SECRETS, used, requested: 1 });
    }
    const entry = this.store.secrets.put(owner, name, this.box.seal(owner, name, value), Date.now());
    this.store.audit.record({ actor: caller.name, action: 'secret.put', requestId, outcome: 'ok', detail: { name, scope } });
    return view(entry);
  }

  /** The caller's own secrets and the global ones, by name. */
  list(caller: Caller): SecretView[] {
    return this.store.secrets.list([caller.name, GLOBAL_OWNER]).map(view);
  }

  /** Deletes a secret; not_found when there is none of that name in that scope. */
  delete(caller: Caller, name: string, scope: 'tenant' | 'global', requestId: string): void {
    const owner = this.ownerFor(caller, scope);
    if (!this.store.secrets.delete(owner, name)) throw new AppError('not_found', `no ${scope} secret named '${name}'`);
    this.store.audit.record({ actor: caller.name, action: 'secret.delete', requestId, outcome: 'ok', detail: { name, scope } });
  }

  /** The value a tenant's sandboxes get for `name`: the tenant's own, else the global one; for the daemon's use only. */
  valueFor(tenant: string, name: string): string | undefined {
    for (const owner of [tenant, GLOBAL_OWNER]) {
      const sealed = this.store.secrets.sealed(owner, name);
      if (sealed) return this.box.open(owner, name, sealed);
    }
    return undefined;
  }
}
