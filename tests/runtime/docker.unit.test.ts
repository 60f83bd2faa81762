import { describe, expect, it } from 'vitest';
import { readMeminfo, realMemoryUse } from '../../src/runtime/docker.ts';

const MiB = 1024 * 1024;

// Shapes as the engine sends them (trimmed): `docker stats` on a cgroup v1 host and on a cgroup v2 host.
const cgroupV1 = {
  usage: 900 * MiB, max_usage: 950 * MiB, limit: 2048 * MiB,
  stats: { cache: 700 * MiB, total_cache: 700 * MiB, inactive_file: 390 * MiB, total_inactive_file: 400 * MiB, active_file: 100 * MiB, rss: 200 * MiB, shmem: 200 * MiB },
};
const cgroupV2 = {
  usage: 900 * MiB, limit: 2048 * MiB,
  stats: { anon: 300 * MiB, file: 600 * MiB, active_file: 100 * MiB, inactive_file: 500 * MiB, shmem: 0, slab: 4 * MiB },
};

describe('real memory use from Docker stats', () => {
  it('takes the inactive page cache (total_inactive_file) off the usage on cgroup v1, not the whole cache with its tmpfs', () => {
    expect(realMemoryUse(cgroupV1)).toBe(500 * MiB);
  });

  it('takes the inactive page cache (inactive_file) off the usage on cgroup v2', () => {
    expect(realMemoryUse(cgroupV2)).toBe(400 * MiB);
  });

  it('uses the cgroup\'s own inactive_file on v1 when the total is missing or malformed', () => {
    const { total_inactive_file: _, ...rest } = cgroupV1.stats;
    expect(realMemoryUse({ ...cgroupV1, stats: rest })).toBe(510 * MiB);
    expect(realMemoryUse({ ...cgroupV1, stats: { ...cgroupV1.stats, total_inactive_file: Number.NaN } })).toBe(510 * MiB);
  });

  it('counts the whole usage when no inactive figure is given, or the given one is negative, NaN or not a number', () => {
    for (const inactive of [undefined, -5 * MiB, Number.NaN, Infinity, '400', null]) {
      expect(realMemoryUse({ usage: 900 * MiB, stats: { inactive_file: inactive } }), String(inactive)).toBe(900 * MiB);
    }
    expect(realMemoryUse({ usage: 900 * MiB })).toBe(900 * MiB);
    expect(realMemoryUse({ usage: 900 * MiB, stats: 'junk' })).toBe(900 * MiB);
  });

  it('is never below 0 nor NaN, whatever the engine sends', () => {
    const hostile: unknown[] = [
      undefined, null, 'junk', 42, {}, { usage: -1 }, { usage: Number.NaN }, { usage: Infinity }, { usage: '900' },
      { usage: 100, stats: { inactive_file: 5000 } }, { usage: 100, stats: { total_inactive_file: 5000 } },
      { usage: Number.NaN, stats: { inactive_file: 10 } }, { usage: -100, stats: { inactive_file: -200 } },
    ];
    for (const s of hostile) {
      const used = realMemoryUse(s);
      expect(Number.isFinite(used), JSON.stringify(s)).toBe(true);
      expect(used, JSON.stringify(s)).toBeGreaterThanOrEqual(0);
    }
    expect(realMemoryUse({ usage: 100, stats: { inactive_file: 5000 } })).toBe(0);
  });
});

describe('host memory from /proc/meminfo (capacity)', () => {
  it('reads MemTotal and MemAvailable in bytes from /proc/meminfo, wherever they are in the file', () => {
    const text = 'MemTotal:       16000000 kB\nMemFree:          100000 kB\nBuffers: 1 kB\nMemAvailable:    4000000 kB\nSwapTotal: 0 kB\n';
    expect(readMeminfo(text)).toEqual({ totalBytes: 16000000 * 1024, availableBytes: 4000000 * 1024 });
    expect(readMeminfo('MemAvailable: 0 kB\nMemTotal: 1 kB')).toEqual({ totalBytes: 1024, availableBytes: 0 });
  });

  it.each([
    ['an empty file', ''],
    ['no MemAvailable (a pre-3.14 kernel)', 'MemTotal: 1000 kB\nMemFree: 10 kB\n'],
    ['a zero MemTotal', 'MemTotal: 0 kB\nMemAvailable: 0 kB\n'],
    ['a negative value', 'MemTotal: 1000 kB\nMemAvailable: -5 kB\n'],
    ['values without units', 'MemTotal: 1000\nMemAvailable: 10\n'],
    ['a key only inside another line', 'XMemTotal: 1000 kB\nXMemAvailable: 10 kB\n'],
    ['binary junk', '\u0000\u00ff😀'.repeat(1000)],
  ])('refuses %s rather than guessing', (_what, text) => {
    expect(() => readMeminfo(text)).toThrow('meminfo has no MemTotal/MemAvailable');
  });
});
