import { isIPv6 } from 'node:net';

/** True for an address of this host itself (a local proxy such as Traefik in the TLS profile, the operator's backend). */
export function isLocal(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * The key one client is counted under by every per-address limit: IPv4 as is (also when IPv4-mapped), IPv6
 * by its /64, which one host usually holds whole (so it cannot dodge a limit by changing its low bits).
 */
export function clientKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote);
  if (mapped) return mapped[1]!;
  const bare = remote.split('%')[0]!;
  if (!isIPv6(bare)) return bare;
  const [head = '', tail] = bare.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
