import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { RemoteClient } from '../support/netns.ts';

/** Opens `n` connections from inside the namespace to host:port, holds them `holdMs`, and answers how many the server closed. */
function openAndHold(remote: RemoteClient, port: number, n: number, holdMs: number): Promise<{ closed: number; answered: number }> {
  return remote.node(`
    const net = require('node:net');
    let closed = 0, answered = 0;
    const socks = Array.from({ length: ${n} }, () => {
      const s = net.connect({ host: '${remote.hostAddress}', port: ${port} });
      s.on('error', () => {}); s.on('close', () => closed++);
      s.on('data', (d) => { if (/^HTTP\\/1\\.1 \\d{3}/.test(String(d))) answered++; });
      return s;
    });
    setTimeout(() => socks.forEach((s) => !s.destroyed && s.write('GET / HTTP/1.1\\r\\nHost: nope.example\\r\\n\\r\\n')), ${holdMs});
    setTimeout(() => { console.log(JSON.stringify({ closed, answered })); process.exit(0); }, ${holdMs + 1000});`);
}

describe('connections per client address', () => {
  let d: Daemon;
  const remote = new RemoteClient();

  beforeAll(async () => {
    await remote.create();
    d = await startDaemon({ env: { SANDBOXD_MAX_CONNECTIONS_PER_ADDRESS: '5' } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await remote.remove();
  });

  it('closes a remote address\'s connections past its cap at once, serves the ones within it, and leaves loopback uncapped', async () => {
    const r = await openAndHold(remote, d.gatewayPort, 8, 500);
    // 3 over the cap are closed at once; the 5 within it each get their answer (404: an unknown host) and stay open.
    expect(r).toEqual({ closed: 3, answered: 5 });
    const metrics = (await d.api('GET', '/metrics')).text;
    expect(metrics).toMatch(/sandboxd_connections_refused_total\{listener="gateway"\} 3\b/);

    const local: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const s = connect({ host: '127.0.0.1', port: d.gatewayPort });
        s.on('error', () => undefined);
        local.push(s);
      }
      await new Promise((res) => setTimeout(res, 300));
      expect(local.filter((s) => s.destroyed).length).toBe(0);
      expect((await d.gateway('nope.example')).status).toBe(404);
    } finally {
      local.forEach((s) => s.destroy());
    }
  });
});
