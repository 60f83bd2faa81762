import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.ts';

const PAGE = 4096;
const dirs: string[] = [];
const open: Store[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Two connections to one new database file, as the main thread and a worker hold them. */
function twoConnections(): { dir: string; main: Store; worker: Store; walBytes: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'sandboxed-checkpoint-'));
  dirs.push(dir);
  const main = openStore(dir, 1000);
  const worker = openStore(dir, 1000);
  open.push(main, worker);
  main.db.exec('CREATE TABLE filler (data BLOB)');
  return { dir, main, worker, walBytes: () => statSync(join(dir, 'sandboxed.db-wal')).size };
}

/** Commits `pages` pages' worth of rows, one page per transaction (as bookkeeping writes come). */
function write(s: Store, pages: number): void {
  for (let i = 0; i < pages; i++) s.db.run('INSERT INTO filler (data) VALUES (randomblob(?))', PAGE - 200);
}

describe('WAL checkpoints', () => {
  it('are made by the committing connection by default: the WAL stays near 1000 pages however much is written', () => {
    const { main, walBytes } = twoConnections();
    write(main, 3000);
    expect(walBytes()).toBeLessThan(1500 * PAGE);
  });

  it('never run on a connection that leaves them to others; another connection checkpoints once the WAL is past the threshold, and later commits reuse it', () => {
    const { main, worker, walBytes } = twoConnections();
    main.db.leaveCheckpointsToOthers();
    write(main, 100);
    expect(walBytes()).toBeLessThan(1000 * PAGE);
    expect(worker.db.checkpointPast(1000)).toBeUndefined();
    write(main, 2900);
    // Every commit is still in the WAL: nothing was checkpointed on the committing connection.
    expect(walBytes()).toBeGreaterThan(3000 * PAGE);
    const done = worker.db.checkpointPast(1000)!;
    expect(done.walPages).toBeGreaterThan(3000);
    expect(done.checkpointedPages).toBe(done.walPages);
    const size = walBytes();
    write(main, 200);
    // The WAL starts over from its beginning: the file does not grow.
    expect(walBytes()).toBe(size);
    expect(main.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM filler')?.n).toBe(3200);
  });
});
