import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startDaemon, type Daemon } from '../tests/support/daemon.ts';
import { ratio, summarize, timeIt, type BenchSection } from './stats.ts';

const run = promisify(execFile);

/** One `curl -N` process reading an SSE exec and throwing the bytes away, for `seconds`; answers bytes read. */
export async function drainStream(url: string, body: unknown, seconds: number): Promise<number> {
  const { stdout } = await run('curl', ['-sN', '-o', '/dev/null', '-w', '%{size_download}', '--max-time', String(seconds), '-X', 'POST',
    '-H', 'accept: text/event-stream', '-d', JSON.stringify(body), url]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '0' }));
  return Number(stdout) || 0;
}

/** Sequential /healthz latencies over `ms`, one request after another. */
async function healthzLatencies(base: string, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    out.push(await timeIt(async () => void (await (await fetch(`${base}/healthz`)).text())));
  }
  return out;
}

/** /healthz back to back for `loadMs` while `streams` SSE execs in sandbox `id` print as fast as they can; answers the latencies and the bytes relayed. */
async function healthzUnderFlood(d: Daemon, id: string, streams: number, loadMs: number): Promise<{ latencies: number[]; relayed: number }> {
  // The streams run in their own processes so this one only measures /healthz.
  const window = Math.ceil(loadMs / 1000) + 2;
  const flood = { cmd: ['sh', '-c', 'cat /dev/zero | tr "\\0" a'], timeout_s: window + 30 };
  const drains = Array.from({ length: streams }, () => drainStream(`${d.url}/v1/sandboxes/${id}/exec`, flood, window));
  await new Promise((r) => setTimeout(r, 1000)); // let every stream get going
  const latencies = await healthzLatencies(d.url, loadMs);
  return { latencies, relayed: (await Promise.all(drains)).reduce((a, b) => a + b, 0) };
}

/**
 * Sync exec of `true` through the API vs `docker exec` of the same container with the CLI; and /healthz
 * latency idle vs while 50 streaming execs print as fast as they can (the main thread only relays bytes), at
 * the default output pace and, on a second daemon, with no pace at all.
 */
export async function benchExec(opts: { n: number; streams: number; loadMs: number }): Promise<BenchSection> {
  const d = await startDaemon();
  let unpaced: { latencies: number[]; relayed: number } | undefined;
  let loaded: { latencies: number[]; relayed: number };
  const api: number[] = [];
  const cli: number[] = [];
  let idle: number[];
  try {
    const { id } = (await d.api('POST', '/v1/sandboxes', {})).body;
    const container = `s-${id}`;
    for (let i = 0; i < 3; i++) {
      await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['true'] });
      await run('docker', ['exec', container, 'true']);
    }
    for (let i = 0; i < opts.n; i++) {
      api.push(await timeIt(() => d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['true'] })));
      cli.push(await timeIt(() => run('docker', ['exec', '-u', '1000:1000', container, 'true'])));
    }
    idle = await healthzLatencies(d.url, 3000);
    loaded = await healthzUnderFlood(d, id, opts.streams, opts.loadMs);
  } finally {
    await d.cleanup();
  }
  const free = await startDaemon({ env: { SANDBOXD_EXEC_OUTPUT_MB_PER_S: '0' } });
  try {
    const { id } = (await free.api('POST', '/v1/sandboxes', {})).body;
    unpaced = await healthzUnderFlood(free, id, opts.streams, opts.loadMs);
  } finally {
    await free.cleanup();
  }
  const syncApi = summarize(api);
  const syncCli = summarize(cli);
  const hzIdle = summarize(idle);
  const hzLoad = summarize(loaded.latencies);
  const hzFree = summarize(unpaced.latencies);
  const rate = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB (${(bytes / 1e6 / (opts.loadMs / 1000 + 1)).toFixed(0)} MB/s)`;
  return {
    title: 'Exec',
    rows: [
      { figure: 'sync exec of `true` through `POST /v1/sandboxes/{id}/exec`', value: syncApi, baseline: '`docker exec -u 1000:1000 <c> true` (CLI process)', baselineValue: syncCli, ratio: ratio(syncApi, syncCli) },
      { figure: `GET /healthz while ${opts.streams} SSE execs stream as fast as they can`, value: hzLoad, baseline: 'GET /healthz idle, same daemon', baselineValue: hzIdle, ratio: ratio(hzLoad, hzIdle) },
      { figure: `the same, with no output pace (SANDBOXD_EXEC_OUTPUT_MB_PER_S=0)`, value: hzFree, baseline: 'GET /healthz idle, first daemon', baselineValue: hzIdle, ratio: ratio(hzFree, hzIdle) },
    ],
    notes: [
      `${opts.n} sequential runs each for sync exec; /healthz sampled back to back for 3 s idle and ${opts.loadMs / 1000} s under load.`,
      `Under load the daemon relayed ${rate(loaded.relayed)} of SSE to ${opts.streams} \`curl -N\` clients (separate processes) at the default pace (4 MiB/s per sandbox, after each stream's first 1 MiB), and ${rate(unpaced.relayed)} with no pace.`,
    ],
  };
}
