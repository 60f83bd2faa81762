import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, docker, execIn, SANDBOX_UID, startDaemon, type Daemon } from '../support/daemon.ts';

describe('sandbox isolation', () => {
  let d: Daemon;
  let a: string;
  let b: string;
  let bIp: string;
  let gateway: string;
  let hostService: Server;
  let hostPort: number;

  beforeAll(async () => {
    d = await startDaemon();
    a = await createSandbox(d);
    b = await createSandbox(d);
    bIp = (await d.api('GET', `/v1/sandboxes/${b}`)).body.container.ip;
    gateway = (await docker.getNetwork(d.network).inspect()).IPAM.Config[0].Gateway as string;
    // A service on every address of the host, as sshd or a database would be.
    hostService = createServer((s) => s.end('host service\n'));
    await new Promise<void>((r) => hostService.listen(0, '0.0.0.0', r));
    hostPort = (hostService.address() as { port: number }).port;
  });
  afterAll(async () => {
    hostService?.close();
    await d?.cleanup();
  });

  /** Whether sandbox A can open a TCP connection to host:port (busybox nc has no -z: connect, send nothing, close). */
  const reachableFromA = async (host: string, port: number) => (await execIn(a, ['sh', '-c', `echo | nc -w 2 ${host} ${port} >/dev/null 2>&1`])).code === 0;

  it('has a probe that sees an open port: A reaches its own server', async () => {
    expect(await reachableFromA('127.0.0.1', 3000)).toBe(true);
  });

  it("cannot reach another sandbox's port, which the host reaches", async () => {
    expect((await fetch(`http://${bIp}:3000/index.html`)).status).toBe(200);
    expect(await reachableFromA(bIp, 3000)).toBe(false);
  });

  it("cannot reach the host's services, nor the API or the preview gateway on the host, at the network gateway address", async () => {
    const viaHost = await new Promise<string>((resolve, reject) => {
      const sock = connect(hostPort, gateway);
      let got = '';
      sock.on('data', (c: Buffer) => (got += c));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    expect(viaHost).toBe('host service\n');
    expect(await reachableFromA(gateway, hostPort)).toBe(false);
    expect(await reachableFromA(gateway, d.port)).toBe(false);
    expect(await reachableFromA(gateway, d.gatewayPort)).toBe(false);
    expect(await reachableFromA('127.0.0.1', d.port)).toBe(false);
  });

  it('runs as the sandbox uid (not 1000) without privileges, on a read-only root with writable /tmp and home', async () => {
    expect((await execIn(a, ['id', '-u'])).output.trim()).toBe(String(SANDBOX_UID));
    expect((await execIn(a, ['sh', '-c', 'echo x > /etc/owned'])).code).not.toBe(0);
    expect((await execIn(a, ['sh', '-c', 'echo x > /tmp/ok && echo y > /home/sandbox/ok'])).code).toBe(0);
    const status = (await execIn(a, ['cat', '/proc/self/status'])).output;
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  });
});
