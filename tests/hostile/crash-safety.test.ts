import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../support/prng.ts';
import { expectConsistent, rows } from '../support/consistency.ts';
import { Daemon, startDaemon } from '../support/daemon.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 20261125);
const OPS = 100;

describe('R1 crash safety', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon()));
  afterAll(() => d?.cleanup());

  it(`survives kill -9 at random points of ${OPS} mixed operations (seed ${SEED}; HOSTILE_SEED replays another)`, async () => {
    const random = prng(SEED);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
    const log: string[] = [];
    let kills = 0;
    for (let i = 0; i < OPS; i++) {
      const live = rows(d).filter((r) => r.status !== 'error');
      const ids = live.map((r) => r.id);
      // Keep a handful of sandboxes around: create more when few are left, remove more when many are.
      const ops = ids.length < 2 ? ['create'] : ids.length > 6 ? ['stop', 'start', 'delete', 'purge', 'purge'] : ['create', 'create', 'stop', 'start', 'delete', 'purge'];
      const op = pick(ops);
      const id = op === 'create' ? '' : pick(ids);
      const [method, path] = {
        create: ['POST', '/v1/sandboxes'], stop: ['POST', `/v1/sandboxes/${id}/stop`], start: ['POST', `/v1/sandboxes/${id}/start`],
        delete: ['DELETE', `/v1/sandboxes/${id}`], purge: ['DELETE', `/v1/sandboxes/${id}?purge=true`],
      }[op]!;
      const request = fetch(`${d.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) }).then((r) => r.status, () => 'cut');
      if (random() < 0.15) {
        const delay = Math.floor(random() * 400);
        await new Promise((r) => setTimeout(r, delay));
        await d.stop(true);
        log.push(`${i} ${op} ${id} -> ${await request} (kill -9 after ${delay} ms)`);
        kills++;
        d = await new Daemon({ reuse: d }).start(d.port);
        await expectConsistent(d, `after kill ${kills} (op ${i}, seed ${SEED}):\n${log.slice(-5).join('\n')}`);
      } else {
        const status = await request;
        log.push(`${i} ${op} ${id} -> ${status}`);
        // Conflicts (stopping a destroyed sandbox, ...) are fine; a server error is not.
        expect(status, `op ${i} ${op} (seed ${SEED})`).not.toBeGreaterThanOrEqual(500);
      }
    }
    expect(kills).toBeGreaterThan(5);
    await d.stop(true);
    d = await new Daemon({ reuse: d }).start(d.port);
    await expectConsistent(d, `at the end (seed ${SEED})`);

    // The API tells the same story as the engine.
    const api = await d.api('GET', '/v1/sandboxes?limit=200');
    const apiStatus = new Map<string, string>(api.body.data.map((s: { id: string; status: string }) => [s.id, s.status]));
    for (const r of rows(d).filter((x) => x.status !== 'destroyed')) expect(apiStatus.get(r.id), r.id).toBe(r.status);
    for (const c of await d.containers()) {
      const id = c.Labels['sandboxed.id']!;
      expect(apiStatus.get(id), `container ${c.Names[0]}`).toBe(c.State === 'running' ? 'running' : 'stopped');
    }
    // Every sandbox that was not purged still has its workspace.
    for (const r of rows(d).filter((x) => x.status !== 'error')) expect(existsSync(join(d.dataDir, 'workspaces', r.id)), r.id).toBe(true);
  }, 300_000);
});
