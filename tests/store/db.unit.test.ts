import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-db-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WAL checkpoints off the main connection', () => {
  it("a connection that leaves checkpoints to others lets the WAL grow past SQLite's 1000-page default; another connection's checkpoint() copies it all back", () => {
    const main = openStore(dir, 1000);
    const worker = openStore(dir, 1000);
    main.db.disableAutoCheckpoint();
    main.db.exec('CREATE TABLE IF NOT EXISTS filler (v TEXT)');
    const row = 'x'.repeat(4000);
    for (let i = 0; i < 1500; i++) main.db.run('INSERT INTO filler (v) VALUES (?)', row);
    const wal = statSync(join(dir, 'sandboxed.db-wal')).size;
    // 1500 rows of 4 KB, a page each: with auto-checkpoints the WAL would be reused from its start after ~1000 pages.
    expect(wal).toBeGreaterThan(1400 * 4096);
    worker.db.checkpoint();
    const after = worker.db.get<{ busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)')!;
    expect(after.busy).toBe(0);
    expect(after.checkpointed).toBe(after.log);
    expect(main.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM filler')!.n).toBe(1500);
    main.db.close();
    worker.db.close();
  });
});
