import type { Config } from '../config.ts';

export type Band = 'normal' | 'soft' | 'hard' | 'emergency';

/** Which band an availability falls in. */
export function bandOf(availablePct: number, p: Config['pressure']): Band {
  if (availablePct < p.emergencyPct) return 'emergency';
  if (availablePct < p.hardPct) return 'hard';
  if (availablePct < p.softPct) return 'soft';
  return 'normal';
}

/** Whether wakes and creates are admitted: closed below the hard band, open again only at the resume level. */
export function admissionAfter(wasOpen: boolean, availablePct: number, p: Config['pressure']): boolean {
  return wasOpen ? availablePct >= p.hardPct : availablePct >= p.resumePct;
}

/** How many sandboxes a pressure pass stops, by band. */
export const STOPS_PER_PASS: Record<Band, number> = { normal: 0, soft: 1, hard: 3, emergency: 1 };

/** What the victim order needs of a running sandbox. */
export interface VictimCandidate {
  id: string;
  owner: string;
}

/**
 * The order a pressure pass stops sandboxes in, fair between tenants: each next victim comes from the
 * tenant that holds the most memory now (`weight` of all its running sandboxes, exempt ones included, so
 * a tenant's always_on sandboxes count against it), taking its first `eligible` one in `order`; that
 * tenant's load then drops by the victim's weight. One tenant with many or large sandboxes is thus
 * relieved of them before anyone else loses one. Ties go to the tenant name, so the order is stable.
 */
export function pickVictims<T extends VictimCandidate>(running: readonly T[], weight: (r: T) => number, eligible: (r: T) => boolean, order: (a: T, b: T) => number): T[] {
  const load = new Map<string, number>();
  const queues = new Map<string, T[]>();
  for (const r of running) {
    load.set(r.owner, (load.get(r.owner) ?? 0) + weight(r));
    if (eligible(r)) queues.set(r.owner, [...(queues.get(r.owner) ?? []), r]);
  }
  for (const q of queues.values()) q.sort(order);
  const out: T[] = [];
  while (queues.size) {
    let owner = '';
    for (const o of queues.keys()) {
      if (!owner || load.get(o)! > load.get(owner)! || (load.get(o) === load.get(owner) && o < owner)) owner = o;
    }
    const q = queues.get(owner)!;
    const victim = q.shift()!;
    out.push(victim);
    load.set(owner, load.get(owner)! - weight(victim));
    if (!q.length) queues.delete(owner);
  }
  return out;
}
