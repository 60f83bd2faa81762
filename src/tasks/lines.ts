/** One line of an agent's output: its text, or, when it passed the cap, only how long it was. */
export type OutputLine = { text: string } | { cut: true; bytes: number };

const NEWLINE = 0x0a;

/**
 * Splits output into lines at `\n` bytes, keeping at most `max` bytes of a line. The output is a file the
 * sandbox can write, so nothing here grows with the input: a line past the cap is dropped as it arrives
 * (only its length is counted) up to the next newline. Lines are cut as bytes and decoded whole, and a
 * newline byte never occurs inside a multi-byte UTF-8 character, so a character split between two chunks
 * is put back together. No string is ever concatenated chunk by chunk.
 */
export class LineReader {
  private readonly max: number;
  private parts: Buffer[] = [];
  private kept = 0;
  /** Bytes of the current line, counted also once it is being dropped. */
  private length = 0;

  constructor(maxLineBytes: number) {
    this.max = maxLineBytes;
  }

  /** The lines this chunk completes, in order; the rest waits for the next chunk. */
  push(chunk: Buffer): OutputLine[] {
    const lines: OutputLine[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      this.take(chunk, start, nl < 0 ? chunk.length : nl);
      if (nl < 0) return lines;
      lines.push(this.finish());
      start = nl + 1;
    }
  }

  /** The last line, when the output did not end with a newline. */
  end(): OutputLine | undefined {
    return this.length ? this.finish() : undefined;
  }

  private take(chunk: Buffer, start: number, end: number): void {
    const n = end - start;
    if (!n) return;
    this.length += n;
    if (this.length > this.max) {
      // Past the cap: what was kept is let go at once, and nothing more is kept until the newline.
      this.parts = [];
      this.kept = 0;
      return;
    }
    this.parts.push(chunk.subarray(start, end));
    this.kept += n;
  }

  private finish(): OutputLine {
    const line: OutputLine = this.length > this.max
      ? { cut: true, bytes: this.length }
      : { text: (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.kept)).toString('utf8') };
    this.parts = [];
    this.kept = 0;
    this.length = 0;
    return line;
  }
}
