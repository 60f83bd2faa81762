import { execFile } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEgressAllow } from '../../src/config-egress.ts';
import { egressNames } from '../../src/runtime/egress.ts';
import { createSandbox, Daemon, docker, eventually, execIn, startDaemon, TEST_IMAGE } from '../support/daemon.ts';
import { FAKE_METADATA, FakeLan } from '../support/fake-lan.ts';

const run = promisify(execFile);
/** How often the daemon reconciles here: long enough that a test sees the rules missing between two passes. */
const INTERVAL_S = 12;

/** What a TCP connection from the host itself gets from host:port (the listeners answer `hit <name>`). */
function fromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: 3000 });
    let got = '';
    sock.on('data', (c: Buffer) => (got += c));
    sock.on('end', () => resolve(got));
    sock.on('timeout', () => (sock.destroy(), resolve(got)));
    sock.on('error', () => resolve(got));
  });
}

describe('egress policy', () => {
  const lan = new FakeLan();
  let d: Daemon;
  let internet: string;
  let none: string;
  let hostV6: Server;
  let hostV6Port: number;
  let published: string | undefined;
  const PUBLISHED_PORT = 20000 + Math.floor(Math.random() * 20000);

  beforeAll(async () => {
    await lan.create([
      [FAKE_METADATA, 80, 'metadata'],
      [lan.lan, 5432, 'lan-allowed'],
      [lan.lan, 6379, 'lan-other'],
      [lan.ula, 80, 'ula'],
    ]);
    d = await startDaemon({ env: { SANDBOXD_EGRESS_ALLOW: `${lan.lan}/32:5432,[${lan.ula}]/128:80`, SANDBOXD_RECONCILE_INTERVAL_S: String(INTERVAL_S) } });
    internet = await createSandbox(d);
    const created = await d.api('POST', '/v1/sandboxes', { network: { egress: 'none' } });
    expect(created.status).toBe(201);
    none = created.body.id;
    // A service on every IPv6 address of the host, the sandbox bridge's link-local one included.
    hostV6 = createServer((s) => s.end('hit host-v6\n'));
    await new Promise<void>((r) => hostV6.listen(0, '::', r));
    hostV6Port = (hostV6.address() as { port: number }).port;
    // Another container's published port, on an address of the host this test made (its veth end).
    const c = await docker.createContainer({
      Image: TEST_IMAGE, Cmd: ['httpd', '-f', '-p', '3000', '-h', '/'],
      HostConfig: { PortBindings: { '3000/tcp': [{ HostIp: lan.hostAddress, HostPort: String(PUBLISHED_PORT) }] } },
      ExposedPorts: { '3000/tcp': {} },
    });
    published = c.id;
    await c.start();
  });
  afterAll(async () => {
    hostV6?.close();
    if (published) await docker.getContainer(published).remove({ force: true }).catch(() => undefined);
    await d?.cleanup();
    await lan.remove();
  });

  /** What sandbox `id` gets from host:port over TCP (busybox nc; a dropped SYN gives nothing after 2 s). */
  const fromSandbox = async (id: string, host: string, port: number) => (await execIn(id, ['sh', '-c', `nc -w 2 ${host} ${port} </dev/null 2>/dev/null`])).output;

  it('has listeners the host reaches: the fake metadata, both LAN ports, the ULA address and the published port', async () => {
    expect(await fromHost(FAKE_METADATA, 80)).toBe('hit metadata\n');
    expect(await fromHost(lan.lan, 5432)).toBe('hit lan-allowed\n');
    expect(await fromHost(lan.lan, 6379)).toBe('hit lan-other\n');
    expect(await fromHost(lan.ula, 80)).toBe('hit ula\n');
    const served = () => fetch(`http://${lan.hostAddress}:${PUBLISHED_PORT}/`).then((r) => r.status, () => 0);
    // Any HTTP answer proves the port is served (busybox httpd has no index page at /).
    expect(await eventually(async () => (await served()) > 0, 10_000)).toBe(true);
  });

  it('opens exactly the SANDBOXD_EGRESS_ALLOW entry: the listed LAN port answers, another port on the same address does not', async () => {
    expect(await fromSandbox(internet, lan.lan, 5432)).toBe('hit lan-allowed\n');
    expect(await fromSandbox(internet, lan.lan, 6379)).toBe('');
  });

  it('refuses the fake cloud metadata service and another container\'s published port', async () => {
    expect(await fromSandbox(internet, FAKE_METADATA, 80)).toBe('');
    expect((await execIn(internet, ['sh', '-c', `nc -w 2 ${lan.hostAddress} ${PUBLISHED_PORT} </dev/null >/dev/null 2>&1`])).code).not.toBe(0);
  });

  it('has no IPv6 in the sandbox: the network has IPv6 off, the sandbox no address, and neither ULA nor the host\'s link-local answers', async () => {
    for (const name of [d.network, egressNames(d.network).noneNetwork]) {
      expect((await docker.getNetwork(name).inspect()).EnableIPv6).toBe(false);
    }
    expect((await execIn(internet, ['cat', '/proc/net/if_inet6'])).output).toBe('');
    const bridge = egressNames(d.network).internetBridge;
    const ll = /inet6 (fe80::[0-9a-f:]+)\//.exec((await run('ip', ['-6', 'addr', 'show', 'dev', bridge])).stdout)?.[1];
    expect(ll).toBeDefined();
    expect(await fromHost(`${ll}%${bridge}`, hostV6Port)).toBe('hit host-v6\n');
    expect(await fromSandbox(internet, `${ll}%eth0`, hostV6Port)).toBe('');
    expect(await fromSandbox(internet, lan.ula, 80)).toBe('');
  });

  it('filters IPv6 too, as a second wall: the ip6tables chain drops link-local, ULA and multicast and opens the listed entry', async () => {
    const { stdout } = await run('ip6tables', ['-w', '-S', egressNames(d.network).chain]);
    for (const cidr of ['fe80::/10', 'fc00::/7', 'ff00::/8', '::1/128']) expect(stdout).toContain(`-d ${cidr} -j DROP`);
    expect(stdout).toContain(`-d ${lan.ula}/128 -p tcp -m tcp --dport 80 -j RETURN`);
  });

  it('gives an egress "none" sandbox nothing at all, not even the allowed listener, while the gateway still reaches it, across a restart', async () => {
    expect((await d.api('GET', `/v1/sandboxes/${none}`)).body.network).toEqual({ egress: 'none' });
    expect((await d.api('GET', `/v1/sandboxes/${internet}`)).body.network).toEqual({ egress: 'internet' });
    const wrong = await d.api('POST', '/v1/sandboxes', { network: { egress: 'open' } });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('body.network.egress');
    for (let round = 0; round < 2; round++) {
      expect(await fromSandbox(none, lan.lan, 5432)).toBe('');
      expect(await fromSandbox(none, FAKE_METADATA, 80)).toBe('');
      expect((await d.gateway(`s-${none.toLowerCase()}-3000.preview.localhost`)).status).toBe(200);
      if (round === 0) {
        expect((await d.api('POST', `/v1/sandboxes/${none}/stop`)).status).toBe(200);
        expect((await d.api('POST', `/v1/sandboxes/${none}/start`)).status).toBe(200);
      }
    }
  });

  it('refuses a bad SANDBOXD_EGRESS_ALLOW entry at start, naming it', async () => {
    const bad = new Daemon({ env: { SANDBOXD_EGRESS_ALLOW: `${lan.lan}/32:5432,10.0.0.1/8:80` } });
    await expect(bad.start()).rejects.toThrow(/SANDBOXD_EGRESS_ALLOW: '10\.0\.0\.1\/8:80'/);
    await bad.cleanup();
  });

  it('reports a flushed chain and a deleted jump on /readyz, and has them back within one reconcile pass', async () => {
    const { chain, internetBridge } = egressNames(d.network);
    const ready = async () => (await d.api('GET', '/readyz')).body;
    const breakRules = async () => {
      await run('iptables', ['-w', '-F', chain]);
      await run('iptables', ['-w', '-D', 'DOCKER-USER', '-i', internetBridge, '-j', chain]);
    };
    expect((await ready()).checks.egress).toBe('ok');
    // First break and repair: a pass has just run, so the next is an interval away while we look again.
    await breakRules();
    expect(await eventually(async () => (await ready()).ready === true, (INTERVAL_S * 2 + 10) * 1000, 100)).toBe(true);
    await breakRules();
    const meanwhile = await ready();
    expect(meanwhile.ready).toBe(false);
    expect(meanwhile.checks.egress).toContain(`IPv4 chain ${chain} has 0 rules`);
    expect(meanwhile.checks.egress).toContain(`IPv4 DOCKER-USER jump for ${internetBridge} is missing`);
    // The positive control: with the rules gone, the sandbox does reach the fake metadata service.
    expect(await fromSandbox(internet, FAKE_METADATA, 80)).toBe('hit metadata\n');
    expect(await eventually(async () => (await ready()).ready === true, (INTERVAL_S + 10) * 1000, 200)).toBe(true);
    expect(d.output).toContain('egress firewall rules were missing or out of place; put back');
    expect(await fromSandbox(internet, FAKE_METADATA, 80)).toBe('');
  });
});

describe('SANDBOXD_EGRESS_ALLOW parsing', () => {
  it('reads v4 and v6 CIDR:port entries into the form iptables prints, a bare address as one host', () => {
    expect(parseEgressAllow(' 10.1.2.3/32:5432, [FD00:0:0::5]/128:443,192.168.0.0/16:80,10.9.9.9:22 ')).toEqual({
      problems: [],
      entries: [
        { family: 4, cidr: '10.1.2.3/32', port: 5432 }, { family: 6, cidr: 'fd00::5/128', port: 443 },
        { family: 4, cidr: '192.168.0.0/16', port: 80 }, { family: 4, cidr: '10.9.9.9/32', port: 22 },
      ],
    });
  });

  it('names each bad entry: no port, port 0, a v6 address without brackets, host bits past the prefix, a prefix too long', () => {
    const { entries, problems } = parseEgressAllow('10.1.2.3/32,10.1.2.3/32:0,fd00::5/128:443,10.1.2.3/8:80,10.1.2.3/33:80,[fd00::1]/64:80');
    expect(entries).toEqual([]);
    expect(problems).toHaveLength(6);
    for (const [i, e] of ['10.1.2.3/32', '10.1.2.3/32:0', 'fd00::5/128:443', '10.1.2.3/8:80', '10.1.2.3/33:80', '[fd00::1]/64:80'].entries()) {
      expect(problems[i]).toContain(`SANDBOXD_EGRESS_ALLOW: '${e}'`);
    }
    expect(problems[3]).toContain('write the network address');
  });
});
