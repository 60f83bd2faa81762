import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, errorEnvelope } from '../errors.ts';

/** Reads a request body, refusing it with 413 before buffering when it is (or grows) larger than `max`. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new AppError('too_large', `the request body is ${declared} bytes; the limit is ${max}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new AppError('too_large', `the request body is larger than the limit of ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; an empty body counts as `{}` where the route allows it. Content-Type is not required: the README's curl lines send none. */
export function parseJson(raw: Buffer, emptyAsObject: boolean): unknown {
  const text = raw.toString('utf8').trim();
  if (!text) {
    if (emptyAsObject) return {};
    throw new AppError('invalid_request', 'body: a JSON body is required');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AppError('invalid_request', `body: not valid JSON (${(err as Error).message})`);
  }
}

/** Sends a JSON response on one line (the README's quick start extracts the id with sed). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Sends the error envelope every client sees: code, message, retryable, details, request_id. */
export function sendError(res: ServerResponse, err: AppError, requestId: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, errorEnvelope(err, requestId), headers);
}
