import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

describe('sandbox isolation', () => {
  let d: Daemon;
  let a: string;
  let b: string;
  let bIp: string;

  beforeAll(async () => {
    d = await startDaemon();
    a = (await d.api('POST', '/v1/sandboxes', {})).body.id;
    b = (await d.api('POST', '/v1/sandboxes', {})).body.id;
    bIp = (await d.api('GET', `/v1/sandboxes/${b}`)).body.container.ip;
  });
  afterAll(() => d?.cleanup());

  /** Whether sandbox A can open a TCP connection to host:port (busybox nc, 2 s timeout). */
  const reachableFromA = async (host: string, port: number) => (await execIn(a, ['nc', '-z', '-w', '2', host, String(port)])).code === 0;

  it("cannot reach another sandbox's port, which the host reaches", async () => {
    const fromHost = await fetch(`http://${bIp}:3000/index.html`);
    expect(fromHost.status).toBe(200);
    expect(await reachableFromA(bIp, 3000)).toBe(false);
    expect((await execIn(a, ['wget', '-q', '-T', '2', '-O', '-', `http://${bIp}:3000/`])).code).not.toBe(0);
  });

  it('cannot reach the API, neither at the network gateway nor at its own loopback', async () => {
    const net = await docker.getNetwork(d.network).inspect();
    const gateway = net.IPAM.Config[0].Gateway as string;
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    expect(await reachableFromA(gateway, d.port)).toBe(false);
    expect(await reachableFromA('127.0.0.1', d.port)).toBe(false);
  });

  it('runs as uid 1000 without privileges, on a read-only root with writable /tmp and home', async () => {
    expect((await execIn(a, ['id', '-u'])).output.trim()).toBe('1000');
    expect((await execIn(a, ['sh', '-c', 'echo x > /etc/owned'])).code).not.toBe(0);
    expect((await execIn(a, ['sh', '-c', 'echo x > /tmp/ok && echo y > /home/sandbox/ok'])).code).toBe(0);
    const status = (await execIn(a, ['cat', '/proc/self/status'])).output;
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  });
});
