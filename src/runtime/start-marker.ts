import { EXEC_BAD_CWD, EXEC_STARTED } from './sandbox-scripts.ts';

/**
 * Reads the wrapper's marker off the start of an exec's stdout: `pending` until it has all of it, then
 * `started` (with the command's first bytes after it, if any) or `bad_cwd`. Bytes that are not a marker
 * (an image whose sh prints something first) count as started and are passed on whole.
 */
export class StartMarker {
  private head = Buffer.alloc(0);
  private settled = false;

  /** Feeds the next stdout bytes; answers what they settle, and the bytes that belong to the command. */
  feed(chunk: Buffer): { state: 'pending' | 'started' | 'bad_cwd'; rest: Buffer } {
    if (this.settled) return { state: 'started', rest: chunk };
    this.head = Buffer.concat([this.head, chunk]);
    const size = Buffer.byteLength(EXEC_STARTED);
    const prefixOf = (marker: string) => Buffer.from(marker).subarray(0, this.head.length).equals(this.head);
    if (this.head.length < size && (prefixOf(EXEC_STARTED) || prefixOf(EXEC_BAD_CWD))) return { state: 'pending', rest: Buffer.alloc(0) };
    this.settled = true;
    const marker = this.head.subarray(0, size).toString('latin1');
    if (marker === EXEC_BAD_CWD) return { state: 'bad_cwd', rest: Buffer.alloc(0) };
    return { state: 'started', rest: marker === EXEC_STARTED ? this.head.subarray(size) : this.head };
  }
}
