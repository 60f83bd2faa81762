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
 * What breaks the invariants a crash at any point must leave: a transient row, a container without a row, a
 * lost workspace, a running row without a running container, a destroyed one with a container.
 */
export async function inconsistencies(d: Daemon): Promise<string[]> {
  const all = rows(d);
  const out = all.filter((r) => TRANSIENT.includes(r.status)).map((r) => `${r.id} left ${r.status}`);
  const ids = new Set(all.map((r) => r.id));
  const containers = await d.containers();
  out.push(...containers.filter((c) => !ids.has(c.Labels['sandboxed.id']!)).map((c) => `${c.Names[0]} has no row`));
  for (const r of all.filter((x) => ['running', 'stopped', 'destroyed'].includes(x.status))) {
    if (!existsSync(join(d.dataDir, 'workspaces', r.id))) out.push(`${r.id} (${r.status}) lost its workspace`);
  }
  const byId = new Map(containers.map((c) => [c.Labels['sandboxed.id']!, c]));
  for (const r of all) {
    const state = byId.get(r.id)?.State ?? 'absent';
    if (r.status === 'running' && state !== 'running') out.push(`${r.id} is running but its container is ${state}`);
    if (r.status === 'stopped' && state === 'running') out.push(`${r.id} is stopped but its container runs`);
    if (r.status === 'destroyed' && state !== 'absent') out.push(`${r.id} is destroyed but its container is ${state}`);
  }
  return out;
}

/** Asserts there are no inconsistencies. */
export async function expectConsistent(d: Daemon, context = ''): Promise<void> {
  expect(await inconsistencies(d), context).toEqual([]);
}
