import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Writes a whole HTTP/1.1 answer with a JSON body straight onto a socket no ServerResponse owns (a refused
 * upgrade, a request the parser refused), with `connection: close`, then lets the socket go: a client that
 * never reads its answer loses the socket after 5 s.
 */
export function answerRaw(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) return void socket.destroy();
  const all = Object.entries({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers, connection: 'close' });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
  setTimeout(() => socket.destroy(), 5000).unref();
}
