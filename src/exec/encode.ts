import type { OutputEncoding } from './protocol.ts';
import { Utf8Framer } from './utf8-framer.ts';

/** One SSE event frame. */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Turns a command's stdout/stderr bytes into what the client receives: SSE frames, JSON text frames
 * (`{type, data, encoding?}`), or the bytes unchanged. Text cut mid-character waits for the rest.
 */
export class OutputEncoder {
  private encoding: OutputEncoding;
  private framers = { stdout: new Utf8Framer(), stderr: new Utf8Framer() };

  constructor(encoding: OutputEncoding) {
    this.encoding = encoding;
  }

  /** Whether encoded pieces may be joined into one message: SSE frames and raw bytes are a stream; each JSON frame is a WebSocket message of its own. */
  get joinable(): boolean {
    return this.encoding !== 'json';
  }

  encode(stream: 'stdout' | 'stderr', chunk: Buffer): Buffer | undefined {
    if (this.encoding === 'raw') return chunk;
    const frame = this.framers[stream].push(chunk);
    return frame && this.wrap(stream, frame);
  }

  /** What the framers still hold at the end of the command, one frame each. */
  flush(): Buffer[] {
    if (this.encoding === 'raw') return [];
    return (['stdout', 'stderr'] as const).flatMap((s) => {
      const f = this.framers[s].flush();
      return f ? [this.wrap(s, f)] : [];
    });
  }

  private wrap(stream: 'stdout' | 'stderr', frame: { data: string; encoding?: 'base64' }): Buffer {
    return Buffer.from(this.encoding === 'sse' ? sseFrame(stream, frame) : JSON.stringify({ type: stream, ...frame }));
  }
}
