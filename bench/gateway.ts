import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startDaemon, TEST_IMAGE, type Daemon } from '../tests/support/daemon.ts';
import { ratio, summarize, timeIt, type BenchSection } from './stats.ts';

const run = promisify(execFile);

/** One GET to address:port (with a Host header when given); answers the status once the whole body has arrived. */
function get(address: string, port: number, path: string, opts: { host?: string; agent?: Agent } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, headers: opts.host ? { host: opts.host } : {}, agent: opts.agent ?? false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `concurrency` keep-alive clients for `ms`: per-request latencies and requests per second. */
async function load(send: (agent: Agent) => Promise<number>, concurrency: number, ms: number): Promise<{ latencies: number[]; rps: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const end = Date.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t = performance.now();
      const status = await send(agent);
      if (status !== 200) throw new Error(`load request answered ${status}`);
      latencies.push(performance.now() - t);
    }
  }));
  agent.destroy();
  return { latencies, rps: latencies.length / ((performance.now() - t0) / 1000) };
}

/** Polls until the URL answers 200; answers how long it took. */
async function untilServed(fetchOnce: () => Promise<number>): Promise<void> {
  for (;;) {
    try {
      if ((await fetchOnce()) === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wake: a request to a stopped sandbox until the app answers it, vs `docker start` + polling the same app directly. */
async function benchWake(d: Daemon, n: number): Promise<BenchSection['rows'][number]> {
  const id = (await d.api('POST', '/v1/sandboxes', {})).body.id;
  const host = `s-${id.toLowerCase()}-3000.preview.localhost`;
  const home = mkdtempSync(join(tmpdir(), 'bench-wake-'));
  mkdirSync(join(home, 'workspace/app'), { recursive: true });
  writeFileSync(join(home, 'workspace/app/index.html'), 'hello');
  for (const p of [home, join(home, 'workspace'), join(home, 'workspace/app'), join(home, 'workspace/app/index.html')]) chownSync(p, 1000, 1000);
  const name = `bench-wake-${d.instance}`;
  await run('docker', ['run', '-d', '--name', name, '--init', '--user', '1000:1000', '--read-only', '--network', d.network, '-v', `${home}:/home/sandbox`, TEST_IMAGE]);
  try {
    const ip = (await run('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${d.network}").IPAddress}}`, name])).stdout.trim();
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < n; i++) {
      await d.api('POST', `/v1/sandboxes/${id}/stop`);
      ours.push(await timeIt(async () => {
        const status = await get('127.0.0.1', d.gatewayPort, '/index.html', { host });
        if (status !== 200) throw new Error(`wake answered ${status}`);
      }));
      await run('docker', ['stop', '-t', '2', name]);
      base.push(await timeIt(async () => {
        await run('docker', ['start', name]);
        await untilServed(() => get(ip, 3000, '/index.html'));
      }));
    }
    const o = summarize(ours);
    const b = summarize(base);
    return { figure: 'wake: first request to a stopped sandbox through the gateway, until the app answered it', value: o, baseline: '`docker start` (CLI) + polling the app directly until 200', baselineValue: b, ratio: ratio(o, b) };
  } finally {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  }
}

/** Gateway latency and throughput against direct access to the container and against Caddy on the same upstream. */
export async function benchGateway(opts: { wakeN: number; loadMs: number; concurrency: number }): Promise<BenchSection> {
  const d = await startDaemon();
  let caddy: ChildProcess | undefined;
  const caddyDir = mkdtempSync(join(tmpdir(), 'bench-caddy-'));
  try {
    const rows: BenchSection['rows'] = [await benchWake(d, opts.wakeN)];
    const notes = [`${opts.wakeN} wakes on each side, alternating; the test image's server (busybox httpd) starts at once.`];

    const id = (await d.api('POST', '/v1/sandboxes', {})).body.id;
    const ip = (await d.api('GET', `/v1/sandboxes/${id}`)).body.container.ip as string;
    const host = `s-${id.toLowerCase()}-3000.preview.localhost`;
    const direct = await load((agent) => get(ip, 3000, '/index.html', { agent }), opts.concurrency, opts.loadMs);
    const ours = await load((agent) => get('127.0.0.1', d.gatewayPort, '/index.html', { host, agent }), opts.concurrency, opts.loadMs);
    const dir = summarize(direct.latencies);
    const gw = summarize(ours.latencies);
    rows.push({ figure: `gateway GET (${opts.concurrency} keep-alive clients)`, value: gw, baseline: 'the same GET direct to the container', baselineValue: dir, ratio: ratio(gw, dir) });
    notes.push(`Throughput: gateway ${ours.rps.toFixed(0)} req/s, direct ${direct.rps.toFixed(0)} req/s, over ${opts.loadMs / 1000} s each.`);

    const caddyPort = await freePort();
    writeFileSync(join(caddyDir, 'Caddyfile'), `{\n  admin off\n  auto_https off\n}\n:${caddyPort} {\n  reverse_proxy ${ip}:3000\n}\n`);
    caddy = spawn('caddy', ['run', '--config', join(caddyDir, 'Caddyfile'), '--adapter', 'caddyfile'], { stdio: 'ignore', env: { ...process.env, HOME: caddyDir, XDG_DATA_HOME: caddyDir, XDG_CONFIG_HOME: caddyDir } });
    const spawned = await new Promise<boolean>((resolve) => {
      caddy!.once('error', () => resolve(false));
      setTimeout(() => resolve(true), 200);
    });
    if (spawned) {
      await untilServed(() => get('127.0.0.1', caddyPort, '/index.html'));
      const viaCaddy = await load((agent) => get('127.0.0.1', caddyPort, '/index.html', { agent }), opts.concurrency, opts.loadMs);
      const cd = summarize(viaCaddy.latencies);
      rows.push({ figure: `gateway GET (${opts.concurrency} keep-alive clients)`, value: gw, baseline: `Caddy ${(await run('caddy', ['version'])).stdout.trim().split(/\s+/)[0]} reverse_proxy to the same container`, baselineValue: cd, ratio: ratio(gw, cd) });
      notes.push(`Throughput: Caddy ${viaCaddy.rps.toFixed(0)} req/s.`);
    } else {
      notes.push('Caddy baseline not measured: `caddy` is not installed (Debian: apt-get install -y caddy).');
    }
    return { title: 'Preview gateway', rows, notes };
  } finally {
    caddy?.kill();
    rmSync(caddyDir, { recursive: true, force: true });
    await d.cleanup();
  }
}
