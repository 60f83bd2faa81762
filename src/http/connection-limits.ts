import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientKey, isLocal } from './client-address.ts';

/**
 * Caps the connections one remote address may hold open on a listener, so a single client cannot take every
 * slot of `maxConnections` and lock everybody else out. Loopback peers are not capped: on this host they are
 * a local proxy carrying everyone's traffic, or the operator's own backend; `onRefused` counts each refusal.
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
