import { readFileSync } from 'node:fs';
import { startDaemon, type Daemon } from '../tests/support/daemon.ts';
import { ratio, summarize, timeIt, type BenchSection, type Summary } from './stats.ts';

/** The daemon process's resident memory in MiB (its worker threads included). */
function rssMiB(d: Daemon): number {
  const status = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

const one = (v: number): Summary => ({ median: v, p99: v, n: 1 });

/** `GET /v1/sandboxes` (first page of 50) and `GET /v1/sandboxes/{id}` latencies, sequential. */
async function listLatencies(d: Daemon, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timeIt(async () => void (await d.api('GET', '/v1/sandboxes?limit=50'))));
  return out;
}

/** Runs `fn` over `items` with at most `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/**
 * Density: one daemon holding `total` sandboxes of which `running` run: its RSS and list latency, each
 * against the same daemon holding a handful, measured in the same run.
 */
export async function benchDensity(opts: { total: number; running: number; listN: number }): Promise<BenchSection> {
  const d = await startDaemon({ env: { SANDBOXD_DEFAULT_MEMORY_MB: '64', SANDBOXD_STOP_GRACE_S: '1' } });
  try {
    const create = async () => {
      // 64 MiB workspaces: each is reserved on the data disk, and 500 of the 10 GiB default would not fit.
      const r = await d.api('POST', '/v1/sandboxes', { resources: { disk_mb: 64 } });
      if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`);
      return r.body.id as string;
    };
    const first: string[] = [];
    for (let i = 0; i < 10; i++) first.push(await create());
    await listLatencies(d, 20);
    const fewList = summarize(await listLatencies(d, opts.listN));
    const fewRss = rssMiB(d);

    const t0 = Date.now();
    const rest: string[] = [];
    await inBatches(Array.from({ length: opts.total - first.length }), 4, async () => void rest.push(await create()));
    const all = [...first, ...rest];
    await inBatches(all.slice(opts.running), 8, async (id) => {
      const r = await d.api('POST', `/v1/sandboxes/${id}/stop`);
      if (r.status !== 200) throw new Error(`stop answered ${r.status}: ${r.text}`);
    });
    const setupS = (Date.now() - t0) / 1000;
    const containers = await d.containers();
    const runningNow = containers.filter((c) => c.State === 'running').length;
    await listLatencies(d, 20);
    const manyList = summarize(await listLatencies(d, opts.listN));
    const manyRss = rssMiB(d);
    return {
      title: 'Density',
      rows: [
        { figure: `daemon RSS (MiB) holding ${opts.total} sandboxes, ${runningNow} running`, value: one(manyRss), baseline: 'the same daemon holding 10 running', baselineValue: one(fewRss), ratio: ratio(one(manyRss), one(fewRss)) },
        { figure: `GET /v1/sandboxes?limit=50 with ${opts.total} sandboxes`, value: manyList, baseline: 'the same request with 10 sandboxes', baselineValue: fewList, ratio: ratio(manyList, fewList) },
      ],
      notes: [
        `${opts.total} sandboxes (test image, 64 MiB limit each) created 4 at a time and ${opts.total - opts.running} of them stopped, in ${setupS.toFixed(0)} s; the engine listed ${containers.length} containers, ${runningNow} running.`,
        `List latencies: ${opts.listN} sequential requests after 20 warm-ups, on each side. RSS from /proc/<pid>/status (VmRSS), threads included.`,
      ],
    };
  } finally {
    await d.cleanup();
  }
}
