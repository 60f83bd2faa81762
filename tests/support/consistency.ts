import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Daemon } from './daemon.ts';

export const TRANSIENT = ['creating', 'starting', 'stopping', 'destroying', 'purging'];

/** Every sandbox row of the daemon's SQLite file, read directly. */
export function rows(d: Daemon): { id: string; status: string; reason: string }[] {
  const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  const db = new DatabaseSync(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
  try {
    return db.prepare('SELECT id, status, reason FROM sandboxes').all() as { id: string; status: string; reason: string }[];
  } finally {
    db.close();
  }
}

/**
 * The invariants a crash at any point must leave: no transient row, no container without a row, no lost
 * workspace, every running row backed by a running container and every destroyed one by none.
 */
export async function expectConsistent(d: Daemon, context = ''): Promise<void> {
  const all = rows(d);
  expect(all.filter((r) => TRANSIENT.includes(r.status)), `transient rows ${context}`).toEqual([]);
  const ids = new Set(all.map((r) => r.id));
  const containers = await d.containers();
  const orphans = containers.filter((c) => !ids.has(c.Labels['sandboxed.id']!));
  expect(orphans.map((c) => c.Names[0]), `containers without a row ${context}`).toEqual([]);
  for (const r of all.filter((x) => ['running', 'stopped', 'destroyed'].includes(x.status))) {
    expect(existsSync(join(d.dataDir, 'workspaces', r.id)), `workspace of ${r.id} (${r.status}) ${context}`).toBe(true);
  }
  const byId = new Map(containers.map((c) => [c.Labels['sandboxed.id']!, c]));
  for (const r of all) {
    const c = byId.get(r.id);
    if (r.status === 'running') expect(c?.State, `container of running ${r.id} ${context}`).toBe('running');
    if (r.status === 'stopped') expect(c?.State ?? 'absent', `container of stopped ${r.id} ${context}`).not.toBe('running');
    if (r.status === 'destroyed') expect(c, `container of destroyed ${r.id} ${context}`).toBeUndefined();
  }
}
