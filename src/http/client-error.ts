import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, errorEnvelope } from '../errors.ts';
import { answerRaw } from './raw-answer.ts';

/** The status for a request the HTTP parser refused, by Node's error code. */
function statusFor(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return 408;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  return 400;
}

/**
 * Answers a request the parser refused (bad framing, invalid characters, oversized headers, a slow client)
 * with a 4xx and `connection: close`, then closes the socket. Never throws: it runs on the server's
 * `clientError` event, where a throw would end the process. Answers the status it sent, or 0 when it could
 * only close the socket (a response was already under way, or the client has gone).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, requestId: string): number {
  try {
    socket.on('error', () => undefined);
    // A response already started on this socket (pipelined requests) cannot be followed by a second status line.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return 0;
    }
    const status = statusFor(err.code);
    const given = (err as { reason?: unknown }).reason;
    const reason = typeof given === 'string' ? given : 'malformed request';
    const refused = new AppError('invalid_request', `the request could not be parsed (${err.code ?? 'error'}: ${reason}); send a well-formed HTTP/1.1 request`);
    answerRaw(socket, status, JSON.stringify(errorEnvelope(refused, requestId)), { 'x-request-id': requestId });
    return status;
  } catch {
    socket.destroy();
    return 0;
  }
}
