/**
 * Splits Docker's multiplexed attach stream (8-byte frame header: stream type, 3 zero bytes, big-endian
 * length) into stdout and stderr chunks. Frames may arrive split across reads; partial ones are held.
 */
export class DockerDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private onChunk: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;

  constructor(onChunk: (stream: 'stdout' | 'stderr', chunk: Buffer) => void) {
    this.onChunk = onChunk;
  }

  push(data: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    while (this.pending.length >= 8) {
      const length = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + length) return;
      const kind = this.pending[0] === 2 ? 'stderr' : 'stdout';
      const payload = this.pending.subarray(8, 8 + length);
      this.pending = this.pending.subarray(8 + length);
      if (payload.length) this.onChunk(kind, Buffer.from(payload));
    }
  }
}
