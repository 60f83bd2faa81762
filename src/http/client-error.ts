import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The status for a request the HTTP parser refused, by Node's error code. */
function statusFor(code: string | undefined): [number, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'Request Header Fields Too Large'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return [408, 'Request Timeout'];
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, 'Content Too Large'];
  return [400, 'Bad Request'];
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
    const [status, text] = statusFor(err.code);
    const given = (err as { reason?: unknown }).reason;
    const reason = typeof given === 'string' ? given : 'malformed request';
    const body = JSON.stringify({ error: { code: 'invalid_request', message: `the request could not be parsed (${err.code ?? 'error'}: ${reason}); send a well-formed HTTP/1.1 request`, retryable: false, request_id: requestId } });
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
    // A client that never reads its answer must not keep the socket.
    setTimeout(() => socket.destroy(), 5000).unref();
    return status;
  } catch {
    socket.destroy();
    return 0;
  }
}
