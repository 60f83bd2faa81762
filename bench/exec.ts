import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startDaemon } from '../tests/support/daemon.ts';
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

/**
 * Sync exec of `true` through the API vs `docker exec` of the same container with the CLI; and /healthz
 * latency idle vs while 50 streaming execs print as fast as they can (the main thread only relays bytes).
 */
export async function benchExec(opts: { n: number; streams: number; loadMs: number }): Promise<BenchSection> {
  const d = await startDaemon();
  try {
    const { id } = (await d.api('POST', '/v1/sandboxes', {})).body;
    const container = `s-${id}`;
    for (let i = 0; i < 3; i++) {
      await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['true'] });
      await run('docker', ['exec', container, 'true']);
    }
    const api: number[] = [];
    const cli: number[] = [];
    for (let i = 0; i < opts.n; i++) {
      api.push(await timeIt(() => d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['true'] })));
      cli.push(await timeIt(() => run('docker', ['exec', '-u', '1000:1000', container, 'true'])));
    }

    const idle = await healthzLatencies(d.url, 3000);
    // The streams run in their own processes so this one only measures /healthz.
    const window = Math.ceil(opts.loadMs / 1000) + 2;
    const flood = { cmd: ['sh', '-c', 'cat /dev/zero | tr "\\0" a'], timeout_s: window + 30 };
    const streams = Array.from({ length: opts.streams }, () => drainStream(`${d.url}/v1/sandboxes/${id}/exec`, flood, window));
    await new Promise((r) => setTimeout(r, 1000)); // let every stream get going
    const loaded = await healthzLatencies(d.url, opts.loadMs);
    const relayed = (await Promise.all(streams)).reduce((a, b) => a + b, 0);

    const syncApi = summarize(api);
    const syncCli = summarize(cli);
    const hzIdle = summarize(idle);
    const hzLoad = summarize(loaded);
    return {
      title: 'Exec',
      rows: [
        { figure: 'sync exec of `true` through `POST /v1/sandboxes/{id}/exec`', value: syncApi, baseline: '`docker exec -u 1000:1000 <c> true` (CLI process)', baselineValue: syncCli, ratio: ratio(syncApi, syncCli) },
        { figure: `GET /healthz while ${opts.streams} SSE execs stream as fast as they can`, value: hzLoad, baseline: 'GET /healthz idle, same daemon', baselineValue: hzIdle, ratio: ratio(hzLoad, hzIdle) },
      ],
      notes: [
        `${opts.n} sequential runs each for sync exec; /healthz sampled back to back for 3 s idle and ${opts.loadMs / 1000} s under load.`,
        `Under load the daemon relayed ${(relayed / 1e6).toFixed(0)} MB of SSE (${(relayed / 1e6 / (opts.loadMs / 1000 + 1)).toFixed(0)} MB/s) to ${opts.streams} \`curl -N\` clients (separate processes) while /healthz was measured.`,
      ],
    };
  } finally {
    await d.cleanup();
  }
}
