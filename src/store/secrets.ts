import type { Db } from './db.ts';

/** A stored secret's name and times; its sealed value never leaves the store through this. */
export interface SecretEntry {
  owner: string;
  name: string;
  createdAt: number;
  updatedAt: number;
}

/** Sealed secret values by owner and name (the sealing is `src/secrets/box.ts`'s). */
export class SecretStore {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Sets the sealed value, keeping the creation time of one already there; answers the entry. */
  put(owner: string, name: string, sealed: Uint8Array, now: number): SecretEntry {
    this.db.run(
      'INSERT INTO secrets (owner, name, sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at',
      owner, name, sealed, now, now,
    );
    return this.entry(owner, name)!;
  }

  /** One entry, without its value. */
  entry(owner: string, name: string): SecretEntry | undefined {
    const r = this.db.get<{ created_at: number; updated_at: number }>('SELECT created_at, updated_at FROM secrets WHERE owner = ? AND name = ?', owner, name);
    return r && { owner, name, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) };
  }

  /** The entries of these owners, by owner then name. */
  list(owners: string[]): SecretEntry[] {
    if (!owners.length) return [];
    const rows = this.db.all<{ owner: string; name: string; created_at: number; updated_at: number }>(
      `SELECT owner, name, created_at, updated_at FROM secrets WHERE owner IN (${owners.map(() => '?').join(', ')}) ORDER BY owner, name`, ...owners,
    );
    return rows.map((r) => ({ owner: r.owner, name: r.name, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) }));
  }

  /** How many secrets an owner has. */
  count(owner: string): number {
    return Number(this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM secrets WHERE owner = ?', owner)?.n ?? 0);
  }

  /** The sealed value, if there is one. */
  sealed(owner: string, name: string): Uint8Array | undefined {
    return this.db.get<{ sealed: Uint8Array }>('SELECT sealed FROM secrets WHERE owner = ? AND name = ?', owner, name)?.sealed;
  }

  /** Removes it; false when there was none. */
  delete(owner: string, name: string): boolean {
    return this.db.run('DELETE FROM secrets WHERE owner = ? AND name = ?', owner, name) > 0;
  }
}
