import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startDaemon } from '../tests/support/daemon.ts';
import { ratio, summarize, timeIt, type BenchSection } from './stats.ts';

const run = promisify(execFile);

/** Sequential /healthz latencies over `ms`, one request after another. */
async function healthzLatencies(base: string, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) out.push(await timeIt(async () => void (await (await fetch(`${base}/healthz`)).text())));
  return out;
}

/** Runs bench/fuzz-client.ts in its own process for `seconds`; answers how many requests it sent. */
async function fuzz(port: number, seconds: number, seed: number, hosts: string[], paths: string[]): Promise<number> {
  const { stdout } = await run(process.execPath, ['--disable-warning=ExperimentalWarning', 'bench/fuzz-client.ts', String(port), String(seconds), String(seed), hosts.join(','), paths.join(',')], { maxBuffer: 1 << 20 });
  return Number(stdout.trim());
}

/** /healthz while raw-socket fuzzers hit both listeners (the API and the preview gateway), vs idle, same daemon. */
export async function benchHostile(opts: { loadMs: number; clients: number }): Promise<BenchSection> {
  const d = await startDaemon();
  try {
    const id = (await d.api('POST', '/v1/sandboxes', {})).body.id as string;
    const priv = (await d.api('POST', '/v1/sandboxes', { visibility: 'private' })).body.id as string;
    const preview = (s: string) => `s-${s.toLowerCase()}-3000.preview.localhost`;
    const idle = await healthzLatencies(d.url, 3000);
    const seconds = Math.ceil(opts.loadMs / 1000) + 1;
    const clients = Array.from({ length: opts.clients }, (_, i) => i % 2
      ? fuzz(d.gatewayPort, seconds, 100 + i, [preview(id), preview(priv), 'nope.example'], ['/', '/index.html', '/?token=x'])
      : fuzz(d.port, seconds, 100 + i, [`127.0.0.1:${d.port}`], ['/healthz', '/v1/sandboxes', `/v1/sandboxes/${id}`, `/v1/sandboxes/${id}/exec`, `/v1/sandboxes/${id}/exec/ws`, `/sandbox/${id}/exec`]));
    await new Promise((r) => setTimeout(r, 500)); // let every fuzzer get going
    const loaded = await healthzLatencies(d.url, opts.loadMs);
    const sent = (await Promise.all(clients)).reduce((a, b) => a + b, 0);
    if (d.proc.exitCode !== null) throw new Error(`the daemon died under the fuzzers:\n${d.output.slice(-2000)}`);
    const hzIdle = summarize(idle);
    const hzLoad = summarize(loaded);
    return {
      title: 'Hostile clients',
      rows: [{ figure: `GET /healthz while ${opts.clients} raw-socket fuzzers hit the API and the gateway`, value: hzLoad, baseline: 'GET /healthz idle, same daemon', baselineValue: hzIdle, ratio: ratio(hzLoad, hzIdle) }],
      notes: [
        `${opts.clients} fuzzing processes (half on each listener, 50 connections each) sent ${sent} malformed requests (${(sent / seconds).toFixed(0)}/s) from tests/support/http-fuzz.ts; /healthz sampled back to back for 3 s idle and ${opts.loadMs / 1000} s under fuzzing.`,
      ],
    };
  } finally {
    await d.cleanup();
  }
}
