import { isUtf8 } from 'node:buffer';

/** One chunk of output as a client receives it: text, or base64 when the bytes are not UTF-8. */
export interface Frame {
  data: string;
  encoding?: 'base64';
}

/**
 * Turns a byte stream into frames, holding back a UTF-8 sequence cut at a chunk boundary so text split
 * across reads still arrives as text; anything that is not UTF-8 goes out as base64.
 */
export class Utf8Framer {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame | undefined {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const cut = data.length - incompleteTail(data);
    const head = data.subarray(0, cut);
    if (isUtf8(head)) {
      this.pending = Buffer.from(data.subarray(cut));
      return head.length ? { data: head.toString('utf8') } : undefined;
    }
    this.pending = Buffer.alloc(0);
    return { data: data.toString('base64'), encoding: 'base64' };
  }

  /** Whatever is still held back, at the end of the stream. */
  flush(): Frame | undefined {
    if (!this.pending.length) return undefined;
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return { data: rest.toString('base64'), encoding: 'base64' };
  }
}

/** How many trailing bytes start a UTF-8 sequence that the chunk does not finish (0 to 3). */
function incompleteTail(b: Buffer): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}
