import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Db, openDb } from '../../src/store/db.ts';
import { migrations } from '../../src/store/migrations.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-migrations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A database as a daemon of schema version `upTo` left it. */
function oldDatabase(path: string, upTo: number): void {
  const db = new Db(path, 1000);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  for (let v = 1; v <= upTo; v++) {
    db.exec(migrations[v - 1]!);
    db.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', v, 0);
  }
  db.close();
}

describe('schema migrations', () => {
  it('rebuilds the sandboxes table for per-owner names without losing a row or any child row', () => {
    const path = join(dir, 'v5.db');
    oldDatabase(path, 5);
    const old = new Db(path, 1000);
    const row = (id: string, name: string | null, owner: string) => old.run(
      `INSERT INTO sandboxes (id, name, owner, status, reason, image, ports, env, memory_mb, cpus, pids, idle_policy, idle_timeout_s, labels, external, last_active_at, created_at, updated_at, visibility, port_visibility)
       VALUES (?, ?, ?, 'stopped', 'idle', 'img', '[3000]', '{"A":"1"}', 256, 1, 64, 'sleep', 60, '{"k":"v"}', '{}', 5, 6, 7, 'private', '{"3000":"public"}')`, id, name, owner);
    row('01A', 'app-1', 'alice');
    row('01B', null, 'bob');
    old.run(`INSERT INTO sandbox_labels (sandbox_id, key, value) VALUES ('01A', 'k', 'v')`);
    old.run(`INSERT INTO processes (sandbox_id, pid, key, cmd, cwd, started_at) VALUES ('01A', 7, 'k', 'sleep', '/', 1)`);
    old.run(`INSERT INTO activity (sandbox_id, source, at) VALUES ('01A', 'api', 9)`);
    old.close();

    const db = openDb(path, 1000);
    try {
      expect(db.all('SELECT version FROM schema_migrations ORDER BY version').map((r) => Number(r.version))).toEqual(migrations.map((_, i) => i + 1));
      const a = db.get('SELECT * FROM sandboxes WHERE id = ?', '01A')!;
      expect(a).toMatchObject({ name: 'app-1', owner: 'alice', env: '{"A":"1"}', visibility: 'private', port_visibility: '{"3000":"public"}', egress: 'internet', disk_mb: null, last_active_at: 5, created_at: 6 });
      expect(db.all('SELECT key, value FROM sandbox_labels WHERE sandbox_id = ?', '01A')).toEqual([{ key: 'k', value: 'v' }]);
      expect(db.all('SELECT pid FROM processes WHERE sandbox_id = ?', '01A')).toEqual([{ pid: 7 }]);
      expect(db.all('SELECT at FROM activity WHERE sandbox_id = ?', '01A')).toEqual([{ at: 9 }]);
      // Children still cascade from the rebuilt table: the foreign keys point at it, not at a dropped one.
      db.run('DELETE FROM sandboxes WHERE id = ?', '01A');
      expect(db.all('SELECT 1 FROM sandbox_labels')).toEqual([]);
      expect(db.all('SELECT 1 FROM processes')).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('lets two owners use one name and refuses it twice for the same owner', () => {
    const db = openDb(join(dir, 'fresh.db'), 1000);
    try {
      const insert = (id: string, owner: string) => db.run(
        `INSERT INTO sandboxes (id, name, owner, status, reason, image, ports, env, memory_mb, cpus, pids, idle_policy, idle_timeout_s, labels, external, last_active_at, created_at, updated_at)
         VALUES (?, 'app-1', ?, 'running', 'created', 'img', '[3000]', '{}', 256, 1, 64, 'sleep', 60, '{}', '{}', 0, 0, 0)`, id, owner);
      insert('01A', 'alice');
      insert('01B', 'bob');
      expect(() => insert('01C', 'alice')).toThrow(/UNIQUE/);
    } finally {
      db.close();
    }
  });
});
