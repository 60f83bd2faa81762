import type { Config } from '../config.ts';

export type Band = 'normal' | 'soft' | 'hard' | 'emergency';

/** Host memory in bytes, from a /proc/meminfo text. */
export function readMeminfo(meminfo: string): { totalBytes: number; availableBytes: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(meminfo)?.[1] ?? NaN);
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (!(total > 0) || !(available >= 0)) throw new Error('meminfo has no MemTotal/MemAvailable');
  return { totalBytes: total * 1024, availableBytes: available * 1024 };
}

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
