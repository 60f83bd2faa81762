import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** What a load run measured: per-request latencies, requests per second, and the fewest and most requests one client got done. */
interface Load {
  latencies: number[];
  rps: number;
  perClient: { min: number; max: number };
}

/**
 * `concurrency` keep-alive clients for `ms`, each sending its next request as the last one ends (closed loop).
 * Such a loop rewards a server that favours some connections: its favoured clients send more requests, so
 * the median leans their way. `perClient` shows how even it was.
 */
async function load(send: (agent: Agent) => Promise<number>, concurrency: number, ms: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const counts: number[] = [];
  const end = Date.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, client) => {
    counts[client] = 0;
    while (Date.now() < end) {
      const t = performance.now();
      const status = await send(agent);
      if (status !== 200) throw new Error(`load request answered ${status}`);
      latencies.push(performance.now() - t);
      counts[client]!++;
    }
  }));
  agent.destroy();
  return { latencies, rps: latencies.length / ((performance.now() - t0) / 1000), perClient: { min: Math.min(...counts), max: Math.max(...counts) } };
}

/**
 * Requests at a steady `rate` per second for `ms` whether or not earlier ones have answered (open loop); each
 * latency counts from when its request was due, so a stall is charged to every request it delays.
 */
async function steady(send: (agent: Agent) => Promise<number>, rate: number, ms: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const latencies: number[] = [];
  const sent: Promise<void>[] = [];
  const total = Math.floor((rate * ms) / 1000);
  const t0 = performance.now();
  for (let next = 0; next < total; ) {
    for (; next < total && (next * 1000) / rate <= performance.now() - t0; next++) {
      const due = t0 + (next * 1000) / rate;
      sent.push(send(agent).then((status) => {
        if (status !== 200) throw new Error(`steady request answered ${status}`);
        latencies.push(performance.now() - due);
      }));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(sent);
  agent.destroy();
  return latencies;
}

/** CPU time (user + system, every thread) a process has used, in milliseconds. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Runs `fn` and answers its result with the CPU milliseconds process `pid` spent per request meanwhile. */
async function withCpu<T extends { length: number } | Load>(pid: number, fn: () => Promise<T>): Promise<{ result: T; cpuPerRequest: number }> {
  const before = cpuMs(pid);
  const result = await fn();
  const n = 'latencies' in result ? result.latencies.length : result.length;
  return { result, cpuPerRequest: (cpuMs(pid) - before) / n };
}

/** Spawns a proxy and waits until it answers through to the app. */
async function startProxy(cmd: string, args: string[], port: number, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess | undefined> {
  const child = spawn(cmd, args, { stdio: 'ignore', env });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    setTimeout(() => resolve(true), 200);
  });
  if (!spawned) return undefined;
  await untilServed(() => get('127.0.0.1', port, '/index.html'));
  return child;
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

/**
 * Gateway latency and throughput against direct access to the container, against Caddy on the same upstream,
 * and against a bare node:http proxy (what Node's HTTP stack costs with nothing of ours on top): 16
 * keep-alive clients (closed loop), then a steady 300 requests/s (open loop).
 */
export async function benchGateway(opts: { wakeN: number; loadMs: number; concurrency: number; rate: number }): Promise<BenchSection> {
  const d = await startDaemon();
  const proxies: ChildProcess[] = [];
  const caddyDir = mkdtempSync(join(tmpdir(), 'bench-caddy-'));
  try {
    const rows: BenchSection['rows'] = [await benchWake(d, opts.wakeN)];
    const notes = [`${opts.wakeN} wakes on each side, alternating; the test image's server (busybox httpd) starts at once and closes every connection, so each proxied request opens a new one upstream.`];

    const id = (await d.api('POST', '/v1/sandboxes', {})).body.id;
    const ip = (await d.api('GET', `/v1/sandboxes/${id}`)).body.container.ip as string;
    const host = `s-${id.toLowerCase()}-3000.preview.localhost`;
    const viaGateway = (agent: Agent) => get('127.0.0.1', d.gatewayPort, '/index.html', { host, agent });
    const direct = await load((agent) => get(ip, 3000, '/index.html', { agent }), opts.concurrency, opts.loadMs);
    const ours = await withCpu(d.proc.pid!, () => load(viaGateway, opts.concurrency, opts.loadMs));
    const oursSteady = await withCpu(d.proc.pid!, () => steady(viaGateway, opts.rate, opts.loadMs));
    const gw = summarize(ours.result.latencies);
    const gwSteady = summarize(oursSteady.result);
    const closed = `gateway GET (${opts.concurrency} keep-alive clients)`;
    const open = `gateway GET at a steady ${opts.rate} req/s`;
    rows.push({ figure: closed, value: gw, baseline: 'the same GET direct to the container', baselineValue: summarize(direct.latencies), ratio: ratio(gw, summarize(direct.latencies)) });
    const mean = (l: number[]) => (l.reduce((a, b) => a + b, 0) / l.length).toFixed(1);
    const spread = (l: Load) => `${l.perClient.min}-${l.perClient.max}`;
    const closedNote = [`gateway ${ours.result.rps.toFixed(0)} req/s (mean ${mean(ours.result.latencies)} ms, ${spread(ours.result)} requests per client, ${ours.cpuPerRequest.toFixed(2)} ms of daemon CPU per request)`, `direct ${direct.rps.toFixed(0)} req/s (mean ${mean(direct.latencies)} ms, ${spread(direct)} per client)`];
    const openNote = [`gateway ${oursSteady.cpuPerRequest.toFixed(2)} ms of daemon CPU`];

    const caddyPort = await freePort();
    writeFileSync(join(caddyDir, 'Caddyfile'), `{\n  admin off\n  auto_https off\n}\n:${caddyPort} {\n  reverse_proxy ${ip}:3000\n}\n`);
    const caddy = await startProxy('caddy', ['run', '--config', join(caddyDir, 'Caddyfile'), '--adapter', 'caddyfile'], caddyPort, { ...process.env, HOME: caddyDir, XDG_DATA_HOME: caddyDir, XDG_CONFIG_HOME: caddyDir });
    if (caddy) {
      proxies.push(caddy);
      const name = `Caddy ${(await run('caddy', ['version'])).stdout.trim().split(/\s+/)[0]} reverse_proxy to the same container`;
      const viaCaddy = (agent: Agent) => get('127.0.0.1', caddyPort, '/index.html', { agent });
      const c = await withCpu(caddy.pid!, () => load(viaCaddy, opts.concurrency, opts.loadMs));
      const cs = await withCpu(caddy.pid!, () => steady(viaCaddy, opts.rate, opts.loadMs));
      rows.push({ figure: closed, value: gw, baseline: name, baselineValue: summarize(c.result.latencies), ratio: ratio(gw, summarize(c.result.latencies)) });
      rows.push({ figure: open, value: gwSteady, baseline: `${name}, the same rate`, baselineValue: summarize(cs.result), ratio: ratio(gwSteady, summarize(cs.result)) });
      closedNote.push(`Caddy ${c.result.rps.toFixed(0)} req/s (mean ${mean(c.result.latencies)} ms, ${spread(c.result)} per client, ${c.cpuPerRequest.toFixed(2)} ms of CPU per request)`);
      openNote.push(`Caddy ${cs.cpuPerRequest.toFixed(2)} ms`);
    } else {
      notes.push('Caddy baseline not measured: `caddy` is not installed (Debian: apt-get install -y caddy).');
    }

    const barePort = await freePort();
    const bare = await startProxy(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, 'bare-proxy.ts'), String(barePort), ip, '3000'], barePort);
    if (!bare) throw new Error('bench/bare-proxy.ts did not start');
    proxies.push(bare);
    const viaBare = (agent: Agent) => get('127.0.0.1', barePort, '/index.html', { agent });
    const b = await withCpu(bare.pid!, () => load(viaBare, opts.concurrency, opts.loadMs));
    const bs = await withCpu(bare.pid!, () => steady(viaBare, opts.rate, opts.loadMs));
    rows.push({ figure: closed, value: gw, baseline: 'a bare node:http proxy (bench/bare-proxy.ts) to the same container', baselineValue: summarize(b.result.latencies), ratio: ratio(gw, summarize(b.result.latencies)) });
    rows.push({ figure: open, value: gwSteady, baseline: 'the bare node:http proxy, the same rate', baselineValue: summarize(bs.result), ratio: ratio(gwSteady, summarize(bs.result)) });
    closedNote.push(`bare node:http proxy ${b.result.rps.toFixed(0)} req/s (mean ${mean(b.result.latencies)} ms, ${spread(b.result)} per client, ${b.cpuPerRequest.toFixed(2)} ms of CPU per request)`);
    openNote.push(`bare node:http proxy ${bs.cpuPerRequest.toFixed(2)} ms`);

    notes.push(`${opts.concurrency} clients for ${opts.loadMs / 1000} s each: ${closedNote.join('; ')}.`);
    notes.push(`Steady ${opts.rate} req/s for ${opts.loadMs / 1000} s each, latency counted from when each request was due; CPU per request: ${openNote.join(', ')}.`);
    return { title: 'Preview gateway', rows, notes };
  } finally {
    for (const p of proxies) p.kill();
    rmSync(caddyDir, { recursive: true, force: true });
    await d.cleanup();
  }
}
