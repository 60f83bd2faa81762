import { mkdirSync, readFileSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

const RT = (process.env.RT as 'node' | 'deno') ?? 'node';
const K = Number(process.env.K ?? 20);
const status = (d: Daemon) => { try { const s = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'); return Number(/VmRSS:\s+(\d+)/.exec(s)![1]) >> 10; } catch { return -1; } };

describe(`review: stalled archive downloads (${RT})`, () => {
  let d: Daemon;
  let id: string;
  beforeAll(async () => {
    d = await startDaemon({ runtime: RT });
    id = (await d.api('POST', '/v1/sandboxes', { name: 'arch' })).body.id;
    // What a sandbox can do to its own workspace: ~99k files with long names (host-side here for speed).
    const dir = join(d.dataDir, 'workspaces', id, 'workspace', 'app', 'big');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 99_000; i++) closeSync(openSync(join(dir, `${String(i).padStart(6, '0')}${'x'.repeat(240)}`), 'w'));
  }, 300_000);
  afterAll(() => d?.cleanup());

  it(`${K} clients that never read`, async () => {
    const socks: Socket[] = [];
    console.log('rss MiB before', status(d));
    for (let i = 0; i < K; i++) {
      const s = connect(d.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.pause();
      s.on('connect', () => s.write(`GET /v1/sandboxes/${id}/archive?path=big HTTP/1.1\r\nHost: x\r\n\r\n`));
      socks.push(s);
    }
    const t0 = Date.now();
    let last = 0;
    while (Date.now() - t0 < Number(process.env.WAIT ?? 60_000) && d.proc.exitCode === null && d.proc.signalCode === null) {
      await new Promise((r) => setTimeout(r, 5000));
      const rss = status(d);
      const h = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 'fail');
      console.log(`t=${((Date.now() - t0) / 1000).toFixed(0)}s rss MiB ${rss} healthz ${h}`);
      if (rss === last && rss > 0) break;
      last = rss;
    }
    console.log('exit', d.proc.exitCode, d.proc.signalCode, d.output.slice(-1500));
    for (const s of socks) s.destroy();
  }, 900_000);
});
