import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { pickVictims } from '../../src/sandboxes/pressure.ts';
import { openStore } from '../../src/store/index.ts';
import type { SandboxRecord } from '../../src/model/sandbox.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-fairness-'));
const store = openStore(dir, 1000);
afterAll(() => (store.db.close(), rmSync(dir, { recursive: true, force: true })));

let clock = 1_000_000;
/** A running row in a real database; each one is less recently active than the next. */
function running(owner: string, memoryMb: number, idlePolicy: 'sleep' | 'always_on' = 'sleep'): string {
  return store.sandboxes.insert({
    id: newId(), name: null, owner, status: 'running', reason: 'created', image: 'img', ports: [3000], env: {}, memoryMb, cpus: 1, pids: 64,
    idlePolicy, idleTimeoutS: 60, labels: {}, external: {}, visibility: 'public', portVisibility: {}, egress: 'internet', diskMb: null, createdAt: clock++,
  }).id;
}

/** The soft/hard band's order, exactly as the reaper asks for it (threads/reapers.ts). */
const softOrder = (owners: string[]) => pickVictims(
  store.sandboxes.list({ status: 'running', limit: 1000 }).filter((r) => owners.includes(r.owner)),
  (r) => r.memoryMb, (r) => r.idlePolicy !== 'always_on', (a: SandboxRecord, b: SandboxRecord) => a.lastActiveAt - b.lastActiveAt,
).map((r) => r.id);

describe('memory-pressure victims are fair between tenants', () => {
  it("stops the heaviest tenant's sandboxes (its always_on memory counted) before another tenant's older one", () => {
    const bobs = running('bob', 512); // the least recently active of all: a global LRU would stop it first
    const pinned = running('alice', 4096, 'always_on');
    const alices = [running('alice', 256), running('alice', 256), running('alice', 256)];
    const order = softOrder(['alice', 'bob']);
    expect(order).toEqual([...alices, bobs]);
    expect(order).not.toContain(pinned);
  });

  it('alternates between tenants of equal load, least recently active first within each', () => {
    const carol = [running('carol', 1024), running('carol', 1024)];
    const dave = [running('dave', 1024), running('dave', 1024)];
    expect(softOrder(['carol', 'dave'])).toEqual([carol[0], dave[0], carol[1], dave[1]]);
  });

  it('weighs tenants by what they hold, not by how many sandboxes: one large sandbox goes before many small ones', () => {
    const small = [running('erin', 128), running('erin', 128), running('erin', 128)];
    const large = running('frank', 2048);
    expect(softOrder(['erin', 'frank'])).toEqual([large, ...small]);
  });
});
