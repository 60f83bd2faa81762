import { isIPv4, isIPv6 } from 'node:net';

/** One `SANDBOXD_EGRESS_ALLOW` entry: TCP and UDP to this network and port pass ahead of the drops. */
export interface EgressAllow {
  family: 4 | 6;
  /** Canonical network/prefix, as iptables prints it. */
  cidr: string;
  port: number;
}

/**
 * Parses `SANDBOXD_EGRESS_ALLOW` (`10.1.2.3/32:5432,[fd00::5]/128:443`); answers the entries and a problem
 * naming each bad one. The prefix may be left out (one address); host bits must be zero.
 */
export function parseEgressAllow(value: string): { entries: EgressAllow[]; problems: string[] } {
  const entries: EgressAllow[] = [];
  const problems: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?:\/(\d{1,3}))?:(\d{1,5})$/.exec(raw);
    const addr = m?.[1] ?? m?.[2];
    const family = m?.[1] !== undefined ? 6 : 4;
    const okAddr = addr !== undefined && (family === 6 ? isIPv6(addr) : isIPv4(addr));
    const bits = family === 6 ? 128 : 32;
    const prefix = m?.[3] === undefined ? bits : Number(m[3]);
    const port = Number(m?.[4]);
    if (!m || !okAddr || prefix > bits || port < 1 || port > 65535) {
      problems.push(`SANDBOXD_EGRESS_ALLOW: '${raw}' is not CIDR:port with a port 1-65535 (e.g. 10.1.2.3/32:5432 or [fd00::5]/128:443)`);
      continue;
    }
    const cidr = canonicalCidr(family, addr!, prefix);
    if (cidr === undefined) {
      problems.push(`SANDBOXD_EGRESS_ALLOW: '${raw}' has bits set past its /${prefix} prefix; write the network address (or /${bits} for one host)`);
      continue;
    }
    entries.push({ family, cidr, port });
  }
  return { entries, problems };
}

/** `addr/prefix` in the form iptables prints, or undefined when the address has host bits set. */
function canonicalCidr(family: 4 | 6, addr: string, prefix: number): string | undefined {
  const bytes = family === 4 ? addr.split('.').map(Number) : v6Bytes(addr);
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return undefined;
  }
  if (family === 4) return `${bytes.join('.')}/${prefix}`;
  // The WHATWG URL parser prints IPv6 the RFC 5952 way (lowercase, longest zero run as ::), as iptables does.
  return `${new URL(`http://[${addr}]/`).hostname.slice(1, -1)}/${prefix}`;
}

function v6Bytes(addr: string): number[] {
  const full = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  const [head, tail] = full.includes('::') ? full.split('::') : [full, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}
