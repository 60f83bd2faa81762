import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './daemon.ts';

const run = promisify(execFile);

/** The fake cloud metadata address; a /32 route sends it to our namespace for the test's life. */
export const FAKE_METADATA = '169.254.169.254';

/**
 * A fake neighbourhood a test makes on this machine: one network namespace joined to the host by a veth pair
 * (198.19.x.0/30, a benchmarking range), holding TCP listeners at a fake metadata service (169.254.169.254),
 * a fake LAN service (a 10.x address routed to it) and a ULA IPv6 address. Each listener answers `hit <name>`.
 * Host routes point only these /32 (and one /64) at the namespace, so no traffic can leave the machine.
 */
export class FakeLan {
  private readonly tag = randomBytes(3).toString('hex');
  readonly ns = `sbxe-${this.tag}`;
  private readonly hostVeth = `veh${this.tag}`;
  private readonly nsVeth = `ven${this.tag}`;
  private readonly third = Math.floor(Math.random() * 250) + 1;
  /** This host's end of the veth. */
  readonly hostAddress = `198.19.${this.third}.1`;
  private readonly peer = `198.19.${this.third}.2`;
  /** The fake LAN service's address (RFC 1918), assigned inside the namespace. */
  readonly lan = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250) + 1}.${Math.floor(Math.random() * 250) + 1}`;
  // Groups without leading zeros: the form iptables prints, so rules can be matched as text.
  private readonly ulaPrefix = `fd${randomBytes(1).toString('hex')}:${group()}:${group()}:1`;
  /** The namespace's ULA address (the host's end is ::1 of the same /64). */
  readonly ula = `${this.ulaPrefix}::2`;
  private listeners: ChildProcess | undefined;
  private routes: string[] = [];

  /** Makes the namespace, its addresses and routes, and starts the listeners (`[address, port, name]`). */
  async create(listen: [string, number, string][]): Promise<this> {
    for (const addr of [FAKE_METADATA, this.lan]) {
      // Only an address no route of this machine names (it would go out the default route) may be taken over.
      const { stdout } = await run('ip', ['route', 'show', 'exact', `${addr}/32`]);
      if (stdout.trim()) throw new Error(`${addr}/32 is already routed on this machine (${stdout.trim()}); not taking it over`);
    }
    const ip = (args: string[]) => run('ip', args);
    await ip(['netns', 'add', this.ns]);
    await ip(['link', 'add', this.hostVeth, 'type', 'veth', 'peer', 'name', this.nsVeth]);
    await ip(['link', 'set', this.nsVeth, 'netns', this.ns]);
    await ip(['addr', 'add', `${this.hostAddress}/30`, 'dev', this.hostVeth]);
    await ip(['-6', 'addr', 'add', `${this.ulaPrefix}::1/64`, 'dev', this.hostVeth, 'nodad']);
    await ip(['link', 'set', this.hostVeth, 'up']);
    await ip(['-n', this.ns, 'addr', 'add', `${this.peer}/30`, 'dev', this.nsVeth]);
    await ip(['-n', this.ns, '-6', 'addr', 'add', `${this.ula}/64`, 'dev', this.nsVeth, 'nodad']);
    await ip(['-n', this.ns, 'addr', 'add', `${FAKE_METADATA}/32`, 'dev', 'lo']);
    await ip(['-n', this.ns, 'addr', 'add', `${this.lan}/32`, 'dev', 'lo']);
    await ip(['-n', this.ns, 'link', 'set', this.nsVeth, 'up']);
    await ip(['-n', this.ns, 'link', 'set', 'lo', 'up']);
    for (const addr of [FAKE_METADATA, this.lan]) {
      await ip(['route', 'add', `${addr}/32`, 'via', this.peer, 'dev', this.hostVeth]);
      this.routes.push(`${addr}/32`);
    }
    const script = `const net = require('net'); const specs = JSON.parse(process.env.SPECS); let n = 0;
      for (const [host, port, name] of specs) net.createServer((s) => { s.on('error', () => {}); s.end('hit ' + name + '\\n'); })
        .listen(port, host, () => { if (++n === specs.length) console.log('ready'); });`;
    this.listeners = spawn('ip', ['netns', 'exec', this.ns, join(ROOT, 'node_modules/.bin/node'), '-e', script], {
      env: { ...process.env, SPECS: JSON.stringify(listen) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      this.listeners!.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
      this.listeners!.once('exit', (code) => reject(new Error(`the fake LAN listeners exited (${code})`)));
    });
    return this;
  }

  /** Removes the listeners, the host routes and the namespace (and with it the veth pair). */
  async remove(): Promise<void> {
    if (this.listeners?.pid !== undefined && this.listeners.exitCode === null) this.listeners.kill('SIGKILL');
    for (const r of this.routes) await run('ip', ['route', 'del', r]).catch(() => undefined);
    await run('ip', ['netns', 'del', this.ns]).catch(() => undefined);
  }
}

/** A random IPv6 group as iptables prints it (no leading zeros, never 0). */
function group(): string {
  return (0x1000 + (randomBytes(2).readUInt16BE(0) % 0xf000)).toString(16);
}
