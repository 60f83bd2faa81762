import { describe, expect, it } from 'vitest';
import { Utf8Framer, type Frame } from '../../src/exec/utf8-framer.ts';
import { prng } from '../support/prng.ts';

/** Feeds `data` cut at `cuts`, answering every frame, the flushed rest included. */
function frames(data: Buffer, cuts: number[]): Frame[] {
  const f = new Utf8Framer();
  const out: Frame[] = [];
  let from = 0;
  for (const at of [...cuts, data.length]) {
    const frame = f.push(data.subarray(from, at));
    if (frame) out.push(frame);
    from = at;
  }
  const rest = f.flush();
  return rest ? [...out, rest] : out;
}
/** The bytes the frames stand for. */
const bytesOf = (fs: Frame[]) => Buffer.concat(fs.map((f) => Buffer.from(f.data, f.encoding === 'base64' ? 'base64' : 'utf8')));

describe('exec output framing', () => {
  const text = Buffer.from('ascii é € 😀 \u0000\u001b[1m done\n');

  it('sends UTF-8 cut anywhere, even inside a character, as text frames that join to the same text', () => {
    for (let at = 0; at <= text.length; at++) {
      const fs = frames(text, [at]);
      expect(fs.every((f) => f.encoding === undefined), String(at)).toBe(true);
      expect(fs.map((f) => f.data).join('')).toBe(text.toString('utf8'));
    }
  });

  it('holds back no more than an unfinished character: a complete chunk goes out whole and at once', () => {
    const f = new Utf8Framer();
    expect(f.push(Buffer.from('hi'))).toEqual({ data: 'hi' });
    expect(f.push(Buffer.from([0xf0, 0x9f]))).toBeUndefined();
    expect(f.push(Buffer.from([0x98, 0x80, 0x21]))).toEqual({ data: '😀!' });
    expect(f.flush()).toBeUndefined();
  });

  it('sends bytes that are not UTF-8 as base64, losing none of them, wherever they are cut', () => {
    const rand = prng(7);
    for (let round = 0; round < 200; round++) {
      const data = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
      const cuts = Array.from({ length: Math.floor(rand() * 5) }, () => Math.floor(rand() * (data.length + 1))).sort((a, b) => a - b);
      expect(bytesOf(frames(data, cuts))).toEqual(data);
    }
  });

  it('flushes a character the stream never finished as base64 at the end', () => {
    const fs = frames(Buffer.from([0x61, 0xe2, 0x82]), []);
    expect(fs).toEqual([{ data: 'a' }, { data: Buffer.from([0xe2, 0x82]).toString('base64'), encoding: 'base64' }]);
  });

  it('refuses overlong encodings and surrogates as text', () => {
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const fs = frames(Buffer.from(bad), []);
      expect(fs.some((f) => f.encoding === 'base64'), JSON.stringify(bad)).toBe(true);
      expect(bytesOf(fs)).toEqual(Buffer.from(bad));
    }
  });
});
