import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

const RT = (process.env.RT as 'node' | 'deno') ?? 'node';
const N = Number(process.env.NCONN ?? 4200);

function open(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => resolve(undefined));
    s.resume(); s.on('connect', () => { s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); resolve(s); });
  });
}

describe(`review: connection slots (${RT})`, () => {
  let d: Daemon;
  beforeAll(async () => { d = await startDaemon({ runtime: RT, env: { SANDBOXD_API_HEADERS_TIMEOUT_S: '5', SANDBOXD_API_REQUEST_TIMEOUT_S: '6' } }); }, 60_000);
  afterAll(() => d?.cleanup());

  it('one client holding partial requests', async () => {
    const socks: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < N; i += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => open(d.port)));
      for (const s of batch) if (s) { socks.push(s); s.on('close', () => closed++); }
    }
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    const normal = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e) => `failed: ${e.cause?.code ?? e.message}`);
    console.log(RT, 'opened', socks.length, 'closed by server so far', closed, 'normal request ->', normal, Date.now() - t0, 'ms');
    await new Promise((r) => setTimeout(r, 14000));
    console.log(RT, 'after 10 s (headers timeout 5 s): closed by server', closed, 'of', socks.length);
    const fd = (await import('node:fs')).readdirSync(`/proc/${d.proc.pid}/fd`).length;
    console.log(RT, 'daemon fds', fd);
    for (const s of socks) s.destroy();
    expect(d.proc.exitCode).toBeNull();
  }, 120_000);
});
