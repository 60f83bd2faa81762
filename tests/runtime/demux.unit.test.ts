import { describe, expect, it } from 'vitest';
import { DockerDemuxer } from '../../src/runtime/demux.ts';
import { prng } from '../support/prng.ts';

/** One frame of Docker's multiplexed stream: type (1 stdout, 2 stderr), three zero bytes, the length, the payload. */
const frame = (type: number, payload: string | Buffer) => {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

/** Feeds `data` cut at `cuts`; answers what reached each stream. */
function demux(data: Buffer, cuts: number[]): { stdout: string; stderr: string; chunks: number } {
  const out = { stdout: '', stderr: '', chunks: 0 };
  const d = new DockerDemuxer((stream, chunk) => ((out[stream] += chunk.toString('latin1')), out.chunks++));
  let from = 0;
  for (const at of [...cuts, data.length]) {
    d.push(data.subarray(from, at));
    from = at;
  }
  return out;
}

describe("Docker's attach stream demultiplexer", () => {
  const stream = Buffer.concat([frame(1, 'out-1 '), frame(2, 'err-1 '), frame(1, ''), frame(1, 'é😀'), frame(2, Buffer.alloc(70_000, 0x7a))]);
  const want = { stdout: `out-1 ${Buffer.from('é😀').toString('latin1')}`, stderr: `err-1 ${'z'.repeat(70_000)}` };

  it('splits frames into stdout and stderr, whatever the read boundaries, skipping empty frames', () => {
    expect(demux(stream, [])).toEqual({ ...want, chunks: 4 });
    for (let at = 0; at <= 40; at++) expect(demux(stream, [at]), String(at)).toMatchObject(want);
    const rand = prng(3);
    for (let round = 0; round < 100; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * (stream.length + 1))).sort((a, b) => a - b);
      expect(demux(stream, cuts)).toMatchObject(want);
    }
  });

  it('holds a partial frame until the rest arrives, handing nothing over early', () => {
    const whole = frame(1, 'abcdef');
    expect(demux(whole.subarray(0, 7), [])).toEqual({ stdout: '', stderr: '', chunks: 0 });
    expect(demux(whole.subarray(0, 13), [])).toEqual({ stdout: '', stderr: '', chunks: 0 });
  });

  it('hands over copies: the chunk a listener keeps is not changed by later reads', () => {
    const kept: Buffer[] = [];
    const d = new DockerDemuxer((_s, c) => kept.push(c));
    const data = Buffer.concat([frame(1, 'first'), frame(1, 'second')]);
    d.push(data);
    data.fill(0);
    expect(kept.map((c) => c.toString())).toEqual(['first', 'second']);
  });
});
