import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDaemon, type Daemon } from '../support/daemon.ts';

const run = promisify(execFile);

/**
 * A "remote client" the test makes itself: a network namespace joined to this host by a veth pair, on
 * addresses from the benchmarking range (198.18.0.0/15), so the daemon sees a non-loopback peer and no
 * traffic leaves the machine.
 */
class RemoteClient {
  readonly ns = `sbxt-${randomBytes(3).toString('hex')}`;
  private readonly tag = randomBytes(3).toString('hex');
  readonly hostAddress = `198.18.${Math.floor(Math.random() * 250) + 1}.1`;

  async create(): Promise<void> {
    const [hv, nv] = [`vzh${this.tag}`, `vzn${this.tag}`];
    const peer = this.hostAddress.replace(/\.1$/, '.2');
    for (const cmd of [
      ['netns', 'add', this.ns], ['link', 'add', hv, 'type', 'veth', 'peer', 'name', nv], ['link', 'set', nv, 'netns', this.ns],
      ['addr', 'add', `${this.hostAddress}/30`, 'dev', hv], ['link', 'set', hv, 'up'],
      ['-n', this.ns, 'addr', 'add', `${peer}/30`, 'dev', nv], ['-n', this.ns, 'link', 'set', nv, 'up'], ['-n', this.ns, 'link', 'set', 'lo', 'up'],
    ]) await run('ip', cmd);
  }

  /** Opens `n` connections from inside the namespace to host:port, holds them `holdMs`, and answers how many the server closed. */
  async openAndHold(port: number, n: number, holdMs: number): Promise<{ closed: number; answered: number }> {
    const script = `
      const net = require('node:net');
      let closed = 0, answered = 0;
      const socks = Array.from({ length: ${n} }, () => {
        const s = net.connect({ host: '${this.hostAddress}', port: ${port} });
        s.on('error', () => {}); s.on('close', () => closed++);
        s.on('data', (d) => { if (/^HTTP\\/1\\.1 \\d{3}/.test(String(d))) answered++; });
        return s;
      });
      setTimeout(() => socks.forEach((s) => !s.destroyed && s.write('GET / HTTP/1.1\\r\\nHost: nope.example\\r\\n\\r\\n')), ${holdMs});
      setTimeout(() => { console.log(JSON.stringify({ closed, answered })); process.exit(0); }, ${holdMs + 1000});`;
    const { stdout } = await run('ip', ['netns', 'exec', this.ns, join(ROOT, 'node_modules/.bin/node'), '-e', script]);
    return JSON.parse(stdout) as { closed: number; answered: number };
  }

  async remove(): Promise<void> {
    await run('ip', ['netns', 'del', this.ns]).catch(() => undefined); // takes the veth pair with it
  }
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
    const r = await remote.openAndHold(d.gatewayPort, 8, 500);
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
