import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

function header(name: string, flag: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0001750\0', 108);
  h.write('0001750\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(flag, 156);
  h.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function put(port: number, path: string, body: Buffer): Promise<{ status: number; text: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'PUT', headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: text.slice(0, 300), ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function probe(url: string, stop: () => boolean): Promise<number> {
  let worst = 0;
  while (!stop()) {
    const t0 = performance.now();
    await fetch(`${url}/healthz`).then((r) => r.text());
    worst = Math.max(worst, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  return worst;
}

describe('review: archive scan on the main thread', () => {
  let d: Daemon;
  let id: string;
  beforeAll(async () => {
    d = await startDaemon({ runtime: (process.env.RT as 'node' | 'deno') ?? 'node' });
    id = (await d.api('POST', '/v1/sandboxes', { name: 'tar' })).body.id;
  }, 60_000);
  afterAll(() => d?.cleanup());

  it('global pax headers only (100 MiB - 1 KiB)', async () => {
    const g = header('pax_global_header', 'g', 0);
    const n = Math.floor(((100 << 20) - 1024) / 512);
    const body = Buffer.concat([...Array(n).fill(g), Buffer.alloc(1024)]);
    let done = false;
    const p = probe(d.url, () => done);
    const r = await put(d.port, `/v1/sandboxes/${id}/archive?path=g`, body);
    done = true;
    const worst = await p;
    console.log('G-ONLY', body.length, r, 'worst healthz ms', worst.toFixed(0));
    // 4 in parallel
    done = false;
    const p2 = probe(d.url, () => done);
    const rs = await Promise.all([1, 2, 3, 4].map(() => put(d.port, `/v1/sandboxes/${id}/archive?path=g`, body)));
    done = true;
    console.log('G-ONLY x4', rs.map((x) => [x.status, x.ms]), 'worst healthz ms', (await p2).toFixed(0));
    expect(d.proc.exitCode).toBeNull();
  }, 300_000);
});
