import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { promisify } from 'node:util';

import type { EgressAllow } from '../config-egress.ts';

const run = promisify(execFile);

/** What the firewall of one sandbox network protects: its chain, its two bridges, the openings. */
export interface EgressPlan {
  chain: string;
  /** The bridge of the default network (egress `internet`). */
  internetBridge: string;
  /** The bridge of the internal network (egress `none`): nothing but replies leaves it. */
  noneBridge: string;
  allow: EgressAllow[];
  /** The host's DNS resolvers: Docker's embedded DNS forwards queries to them from the sandbox's own address. */
  nameservers: string[];
}

/** Every sandbox bridge's interface name starts with this. */
export const BRIDGE_PREFIX = 'sbx';

/** Bridge names and chain name of a sandbox network: derived from its name, so every thread agrees without asking Docker. */
export function egressNames(network: string): { internetBridge: string; noneBridge: string; noneNetwork: string; chain: string } {
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10);
  return {
    internetBridge: `${BRIDGE_PREFIX}${hash(network)}`,
    noneBridge: `${BRIDGE_PREFIX}${hash(`${network}/none`)}`,
    noneNetwork: `${network}-none`,
    // 19 characters: iptables chain names stop at 28.
    chain: `SANDBOXD-${hash(network)}`,
  };
}

/**
 * Near-host destinations no sandbox may open a connection to (the public internet is what is left). Besides
 * the private and link-local ranges: IETF protocol assignments (192.0.0.0/24) and benchmarking (198.18/15)
 * are never the internet; 168.63.129.16 is Azure's host-only WireServer (VM configuration, a public address
 * only the VM reaches); NAT64 prefixes (64:ff9b::/96, 64:ff9b:1::/48) reach private IPv4 where the host's
 * network translates them.
 */
const BLOCKED: Record<4 | 6, string[]> = {
  4: ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '168.63.129.16/32', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4'],
  6: ['::/128', '::1/128', '::ffff:0.0.0.0/96', '64:ff9b::/96', '64:ff9b:1::/48', 'fe80::/10', 'fc00::/7', 'ff00::/8'],
};

/** Non-loopback resolvers in a resolv.conf (a loopback one is the host's own stub, which Docker does not use). */
export function resolvConfNameservers(path = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!.replace(/%.*$/, ''))
    .filter((a) => (isIPv4(a) && !a.startsWith('127.')) || (isIPv6(a) && a !== '::1'));
}

/** The rules of our chain for one family, each as `iptables -S` prints it after `-A <chain>`. */
export function chainRules(plan: EgressPlan, family: 4 | 6): string[] {
  const open = (cidr: string, port: number) => ['tcp', 'udp'].map((p) => `-d ${cidr} -p ${p} -m ${p} --dport ${port} -j RETURN`);
  const ns = plan.nameservers.filter((a) => (family === 4 ? isIPv4(a) : isIPv6(a))).map((a) => `${a}/${family === 4 ? 32 : 128}`);
  return [
    // Replies to connections the host opened (the gateway's proxying) and to the sandbox's own pass.
    '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    `-i ${plan.noneBridge} -j DROP`,
    ...plan.allow.filter((a) => a.family === family).flatMap((a) => open(a.cidr, a.port)),
    ...ns.flatMap((cidr) => open(cidr, 53)),
    // The host itself on any of its addresses, and whatever it forwards to by DNAT (other containers' published ports).
    '-m addrtype --dst-type LOCAL -j DROP',
    ...(family === 4 ? ['-m addrtype --dst-type BROADCAST -j DROP'] : []),
    '-m conntrack --ctstate DNAT -j DROP',
    ...BLOCKED[family].map((cidr) => `-d ${cidr} -j DROP`),
  ];
}

/** Docker's chain for user rules: FORWARD jumps to it first, and Docker keeps it so (it re-inserts it on every network create). */
const USER_CHAIN = 'DOCKER-USER';

interface Jump { base: string; rule: string; what: string }

/**
 * The jumps into our chain: traffic from either bridge that is forwarded (from DOCKER-USER, ahead of every
 * ACCEPT Docker adds, which it inserts above anything we could put in FORWARD itself) or addressed to the host.
 */
function jumps(plan: EgressPlan): Jump[] {
  const bridges = [plan.internetBridge, plan.noneBridge];
  return [
    { base: 'FORWARD', rule: `-j ${USER_CHAIN}`, what: `jump to ${USER_CHAIN}` },
    ...[USER_CHAIN, 'INPUT'].flatMap((base) => bridges.map((br) => ({ base, rule: `-i ${br} -j ${plan.chain}`, what: `jump for ${br}` }))),
  ];
}

/** A rule that cannot accept our bridges' packets: a target that never accepts, or an input interface not ours. */
function harmless(line: string, bridges: string[]): boolean {
  if (/ -j (DROP|REJECT|SANDBOXD-[0-9a-f]+|DOCKER-ISOLATION-STAGE-\d)$/.test(line)) return true;
  const iface = /^-A \S+ -i (\S+) /.exec(line)?.[1];
  return iface !== undefined && !iface.endsWith('+') && !bridges.includes(iface);
}

/** The families to filter: IPv6 only where the kernel has it (with `ipv6.disable=1` there is nothing to filter, and no ip6tables table). */
function families(): (4 | 6)[] {
  return existsSync('/proc/net/if_inet6') ? [4, 6] : [4];
}

const TOOLS = { 4: { cmd: 'iptables', restore: 'iptables-restore', name: 'IPv4' }, 6: { cmd: 'ip6tables', restore: 'ip6tables-restore', name: 'IPv6' } } as const;

/** What is wrong with one family's rules, as short phrases; empty when all is in place. */
function problemsIn(plan: EgressPlan, family: 4 | 6, saved: string): { chain: boolean; userChain: boolean; jumps: Jump[]; text: string[] } {
  const lines = saved.split('\n').map((l) => l.trim()).filter(Boolean);
  const name = TOOLS[family].name;
  const text: string[] = [];
  const want = chainRules(plan, family).map((r) => `-A ${plan.chain} ${r}`);
  const have = lines.filter((l) => l.startsWith(`-A ${plan.chain} `));
  let chain = false;
  if (!lines.includes(`-N ${plan.chain}`)) {
    text.push(`${name} chain ${plan.chain} is missing`);
    chain = true;
  } else if (have.length !== want.length || have.some((l, i) => l !== want[i])) {
    text.push(`${name} chain ${plan.chain} has ${have.length} rules, ${want.filter((w, i) => have[i] === w).length} of the ${want.length} expected in place`);
    chain = true;
  }
  const bridges = [plan.internetBridge, plan.noneBridge];
  const bad = jumps(plan).filter(({ base, rule, what }) => {
    const ofBase = lines.filter((l) => l.startsWith(`-A ${base} `));
    const at = ofBase.indexOf(`-A ${base} ${rule}`);
    if (at < 0) {
      text.push(`${name} ${base} ${what} is missing`);
      return true;
    }
    if (!ofBase.slice(0, at).every((l) => harmless(l, bridges))) {
      text.push(`${name} ${base} ${what} comes after a rule that may accept`);
      return true;
    }
    return false;
  });
  return { chain, userChain: lines.includes(`-N ${USER_CHAIN}`), jumps: bad, text };
}

/** The firewall of a sandbox network, with the host's resolvers opened on port 53. */
export function egressFirewallFor(network: string, allow: EgressAllow[]): EgressFirewall {
  const { chain, internetBridge, noneBridge } = egressNames(network);
  return new EgressFirewall({ chain, internetBridge, noneBridge, allow, nameservers: resolvConfNameservers() });
}

/** Builds, checks and repairs the egress firewall of one sandbox network (iptables and ip6tables, filter table). */
export class EgressFirewall {
  readonly plan: EgressPlan;

  constructor(plan: EgressPlan) {
    this.plan = plan;
  }

  /** What is missing or out of place now, as phrases for /readyz; empty when every rule is in place. */
  async problems(): Promise<string[]> {
    const out: string[] = [];
    for (const family of families()) {
      try {
        out.push(...problemsIn(this.plan, family, await save(family)).text);
      } catch (err) {
        out.push(`${TOOLS[family].name} rules cannot be read (${firstLine(err)})`);
      }
    }
    return out;
  }

  /** Puts every rule back where it belongs (the chain atomically, then the jumps); answers what it repaired. */
  async repair(): Promise<string[]> {
    const repaired: string[] = [];
    for (const family of families()) {
      const { cmd, restore } = TOOLS[family];
      const found = problemsIn(this.plan, family, await save(family));
      if (found.chain) {
        // Declaring the chain under --noflush empties and refills it in one transaction: no moment without the drops.
        const body = ['*filter', `:${this.plan.chain} - [0:0]`, ...chainRules(this.plan, family).map((r) => `-A ${this.plan.chain} ${r}`), 'COMMIT', ''].join('\n');
        await feed(restore, ['-w', '--noflush'], body);
      }
      // Docker makes DOCKER-USER only for families it manages (not IPv6 on an IPv4-only engine): make it as Docker would.
      if (!found.userChain) await run(cmd, ['-w', '-N', USER_CHAIN]).catch(() => undefined);
      for (const { base, rule } of found.jumps) {
        const args = rule.split(' ');
        // Drop every copy (one may sit behind an ACCEPT), then put one first in the chain.
        for (let i = 0; i < 16; i++) {
          if (!(await run(cmd, ['-w', '-D', base, ...args]).then(() => true, () => false))) break;
        }
        await run(cmd, ['-w', '-I', base, '1', ...args]);
      }
      repaired.push(...found.text);
    }
    return repaired;
  }
}

async function save(family: 4 | 6): Promise<string> {
  return (await run(TOOLS[family].cmd, ['-w', '-S'], { maxBuffer: 16 << 20 })).stdout;
}

function feed(cmd: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
    child.stdin.end(input);
  });
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return String(e?.stderr || e?.message || err).trim().split('\n')[0]!;
}

/** Deletes the egress rules of a network (its jumps, then its chain), for uninstall and test cleanup; never fails. */
export async function removeEgressRules(network: string): Promise<void> {
  const { chain } = egressNames(network);
  for (const family of families()) {
    const { cmd } = TOOLS[family];
    const saved = await save(family).catch(() => '');
    for (const line of saved.split('\n')) {
      if (!line.endsWith(` -j ${chain}`) || !line.startsWith('-A ')) continue;
      await run(cmd, ['-w', '-D', ...line.slice(3).split(' ')]).catch(() => undefined);
    }
    await run(cmd, ['-w', '-F', chain]).catch(() => undefined);
    await run(cmd, ['-w', '-X', chain]).catch(() => undefined);
  }
}
