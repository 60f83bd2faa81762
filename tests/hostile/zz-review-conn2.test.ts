import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

const RT = (process.env.RT as 'node' | 'deno') ?? 'node';
const TARGET = 4300;

describe(`review: sustained slot holding (${RT})`, () => {
  let d: Daemon;
  beforeAll(async () => { d = await startDaemon({ runtime: RT }); }, 60_000);
  afterAll(() => d?.cleanup());

  it('one unauthenticated client keeps the API full', async () => {
    let live = 0;
    let stop = false;
    const openOne = () => {
      if (stop) return;
      live++;
      const s = connect(d.port, '127.0.0.1');
      s.resume();
      s.on('error', () => undefined);
      s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      s.on('close', () => { live--; setTimeout(openOne, 5); });
    };
    for (let i = 0; i < TARGET; i++) { openOne(); if (i % 200 === 0) await new Promise((r) => setTimeout(r, 20)); }
    await new Promise((r) => setTimeout(r, 2000));
    let ok = 0; let bad = 0; const errs = new Set<string>();
    const until = Date.now() + 40_000;
    while (Date.now() < until) {
      const r = await new Promise<string | number>((resolve) => {
        const q = request({ host: '127.0.0.1', port: d.port, path: '/healthz', agent: false, timeout: 3000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
        q.on('timeout', () => { q.destroy(); resolve('timeout'); });
        q.on('error', (e: NodeJS.ErrnoException) => resolve(`err:${e.code}`));
        q.end();
      });
      if (r === 200) ok++; else { bad++; errs.add(String(r)); }
      await new Promise((r) => setTimeout(r, 250));
    }
    stop = true;
    console.log(RT, 'normal /healthz during 40 s of slot holding: ok', ok, 'failed', bad, [...errs], 'attacker sockets live', live);
    expect(d.proc.exitCode).toBeNull();
  }, 120_000);
});
