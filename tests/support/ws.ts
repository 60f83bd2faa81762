import WebSocket from 'ws';

/** Opens a WebSocket; answers it, or the HTTP status, Retry-After and body it was refused with. */
export function openWebSocket(url: string): Promise<{ ws?: WebSocket; status?: number; retryAfter?: string; body?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    ws.once('error', reject);
  });
}
