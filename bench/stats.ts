/** Median, p99 and count of a sample of durations in milliseconds. */
export interface Summary {
  median: number;
  p99: number;
  n: number;
}

/** One figure of a benchmark, against the baseline measured in the same run. */
export interface BenchRow {
  figure: string;
  value: Summary;
  baseline: string;
  baselineValue: Summary;
  /** value median / baseline median */
  ratio: number;
}

/** A benchmark's section of docs/benchmarks.md. */
export interface BenchSection {
  title: string;
  rows: BenchRow[];
  notes: string[];
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, idx)]!;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

export function ratio(value: Summary, baseline: Summary): number {
  return value.median / baseline.median;
}

/** Wall time of `fn` in milliseconds. */
export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
