import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import type { Visibility } from '../../src/model/sandbox.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { PreviewTargets } from '../../src/sandboxes/previews.ts';
import { openStore } from '../../src/store/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-previews-'));
const store = openStore(dir, 1000);
afterAll(() => (store.db.close(), rmSync(dir, { recursive: true, force: true })));

// Only records are read here; no endpoint is asked for.
const targets = new PreviewTargets(store.sandboxes, {} as Runtime);

function insert(id: string, owner: string, visibility: Visibility, ports: number[], createdAt: number) {
  return store.sandboxes.insert({
    id, name: null, owner, status: 'running', reason: 'created', image: 'img', ports, env: {}, memoryMb: 256, cpus: 1, pids: 64,
    idlePolicy: 'sleep', idleTimeoutS: 60, labels: {}, external: {}, visibility, portVisibility: {}, egress: 'internet', diskMb: null, createdAt,
  });
}

describe("the gateway's records of sandboxes", () => {
  it('answers the record as it is after every transition, from memory while the row has not moved', () => {
    const id = newId();
    insert(id, 'alice', 'public', [3000], 1000);
    const first = targets.get(id)!;
    expect(first).toMatchObject({ status: 'running', visibility: 'public' });
    expect(targets.get(id)).toBe(first);
    store.sandboxes.transition(id, ['running'], 'stopped', 'idle');
    expect(targets.get(id)).toMatchObject({ status: 'stopped', version: first.version + 1 });
  });

  it('never serves a purged sandbox\'s record to its id created again, though the new row counts its versions from 1 too', () => {
    const id = newId();
    insert(id, 'alice', 'public', [3000, 9229], 1000);
    expect(targets.get(id)).toMatchObject({ owner: 'alice', visibility: 'public', ports: [3000, 9229], version: 1 });
    store.sandboxes.delete(id);
    insert(id, 'bob', 'private', [3000], 2000);
    expect(targets.get(id)).toMatchObject({ owner: 'bob', visibility: 'private', ports: [3000], version: 1 });
  });

  it('answers nothing for a purged sandbox, and drops it from memory', () => {
    const id = newId();
    insert(id, 'alice', 'public', [3000], 1000);
    expect(targets.get(id)).toBeDefined();
    store.sandboxes.delete(id);
    expect(targets.get(id)).toBeUndefined();
  });
});
