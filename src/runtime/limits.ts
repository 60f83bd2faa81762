import { readFileSync } from 'node:fs';

/**
 * The hard open-files limit of this process, or undefined where /proc is absent. Containers cannot be
 * given more than the engine itself has, and on one host the daemon and the engine normally share it.
 */
export function hardNofileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard && /^\d+$/.test(hard) ? Number(hard) : undefined;
  } catch {
    return undefined;
  }
}
