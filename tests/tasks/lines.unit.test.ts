import { describe, expect, it } from 'vitest';
import { LineReader, type OutputLine } from '../../src/tasks/lines.ts';
import { prng } from '../support/prng.ts';

/** Feeds `data` to a reader cut at the given offsets; answers every line, the unterminated last one included. */
function read(max: number, data: Buffer, cuts: number[]): OutputLine[] {
  const r = new LineReader(max);
  const out: OutputLine[] = [];
  let from = 0;
  for (const at of [...cuts, data.length]) {
    out.push(...r.push(data.subarray(from, at)));
    from = at;
  }
  const last = r.end();
  return last ? [...out, last] : out;
}

describe('the bounded line reader of task output', () => {
  const text = ['{"a":"é€😀"}', '', 'plain', '😀'.repeat(10), 'tail without newline'];
  const data = Buffer.from(text.join('\n'));

  it('cut at every byte offset, even inside a multi-byte character, it answers the same lines', () => {
    for (let at = 0; at <= data.length; at++) {
      expect(read(1024, data, [at])).toEqual(text.map((t) => ({ text: t })));
    }
  });

  it('cut into random pieces, including empty and one-byte ones, it answers the same lines', () => {
    const rand = prng(11);
    for (let round = 0; round < 200; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * (data.length + 1))).sort((a, b) => a - b);
      expect(read(1024, data, cuts)).toEqual(text.map((t) => ({ text: t })));
    }
  });

  it('keeps a line of exactly the cap; one byte more is reported cut with its full length, and the next line is read', () => {
    const max = 16;
    const exact = 'x'.repeat(max);
    const over = 'é'.repeat(max / 2) + 'y'; // 17 bytes
    const lines = read(max, Buffer.from(`${exact}\n${over}\nnext\n`), [3, 20]);
    expect(lines).toEqual([{ text: exact }, { cut: true, bytes: 17 }, { text: 'next' }]);
    // A huge line fed in many chunks is counted, never kept.
    const r = new LineReader(max);
    const chunk = Buffer.alloc(1 << 16, 'z');
    for (let i = 0; i < 64; i++) expect(r.push(chunk)).toEqual([]);
    expect(r.push(Buffer.from('\nok\n'))).toEqual([{ cut: true, bytes: 64 << 16 }, { text: 'ok' }]);
    expect(r.end()).toBeUndefined();
  });

  it('splits only at \\n: carriage returns, NULs and escapes stay in the line, and invalid UTF-8 becomes U+FFFD', () => {
    const data = Buffer.concat([Buffer.from('a\r\nb\u0000c\u001b[31m\n'), Buffer.from([0xff, 0xc3, 0x0a]), Buffer.from('\n\n')]);
    expect(read(64, data, [2, 5])).toEqual([{ text: 'a\r' }, { text: 'b\u0000c\u001b[31m' }, { text: '\ufffd\ufffd' }, { text: '' }, { text: '' }]);
    // Only newlines: as many empty lines, no state kept between them.
    const r = new LineReader(4);
    expect(r.push(Buffer.alloc(10_000, 0x0a))).toHaveLength(10_000);
    expect(r.end()).toBeUndefined();
  });
});
