import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** True for an address of this host itself (a local proxy such as Traefik in the TLS profile, the operator's backend). */
export function isLocal(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** The key one client is counted under: its address, or its /64 for IPv6 (one host usually holds a whole /64). */
export function clientKey(address: string): string {
  if (!address.includes(':') || address.startsWith('::ffff:')) return address;
  return address.split(':').slice(0, 4).join(':');
}

/**
 * Caps the connections one remote address may hold open on a listener, so a single client cannot take every
 * slot of `maxConnections` and lock everybody else out. Loopback peers are not capped: on this host they are
 * a local proxy carrying everyone's traffic, or the operator's own backend. Answers the number refused so far.
 */
export function limitConnectionsPerAddress(server: Server, perAddress: number, onRefused: () => void): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (!address || isLocal(address)) return;
    const key = clientKey(address);
    const n = open.get(key) ?? 0;
    if (n >= perAddress) {
      socket.on('error', () => undefined);
      socket.destroy();
      onRefused();
      return;
    }
    open.set(key, n + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
    });
  });
}
