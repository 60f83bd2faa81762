import { describe, expect, it } from 'vitest';
import { pad, scanTar, TAR_END, tarHeader } from '../../src/workspaces/tar.ts';
import { parseTar, tarOf, ustarOf } from '../support/tar.ts';

const MTIME = 1_700_000_000_000;
/** A tar from the daemon's own writer: headers, data, padding, the end blocks. */
function archive(entries: { path: string; type: 'file' | 'dir' | 'symlink'; data?: string; linkname?: string; mode?: number }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(tarHeader({ path: e.path, type: e.type, size: data.length, mode: e.mode ?? 0o644, mtime: MTIME, ...(e.linkname ? { linkname: e.linkname } : {}) }));
    if (e.type === 'file') parts.push(data, Buffer.alloc(pad(data.length)));
  }
  return Buffer.concat([...parts, TAR_END]);
}

describe('the tar reader and writer', () => {
  it('reads back what the writer wrote: paths, kinds, modes and data, including unicode and empty files', () => {
    const tar = archive([
      { path: 'app', type: 'dir', mode: 0o755 }, { path: 'app/index.html', type: 'file', data: '<h1>hi</h1>' },
      { path: 'app/é😀.txt', type: 'file', data: 'ünï\u0000côdé' }, { path: 'app/empty', type: 'file' },
      { path: 'app/link', type: 'symlink', linkname: '../outside' }, { path: 'app/run.sh', type: 'file', data: '#!/bin/sh\n', mode: 0o4755 },
    ]);
    expect(parseTar(tar).map((e) => [e.path, e.type, e.mode.toString(8), e.data.toString('utf8')])).toEqual([
      ['app/', 'dir', '755', ''], ['app/index.html', 'file', '644', '<h1>hi</h1>'], ['app/é😀.txt', 'file', '644', 'ünï\u0000côdé'],
      ['app/empty', 'file', '644', ''], ['app/link', 'symlink', '644', ''], ['app/run.sh', 'file', '4755', '#!/bin/sh\n'],
    ]);
  });

  it('writes a pax record for a path past 100 bytes and reads the whole path back', () => {
    const long = `${'d'.repeat(60)}/${'e'.repeat(80)}/${'f'.repeat(200)}.txt`;
    const [e] = parseTar(archive([{ path: long, type: 'file', data: 'x' }]));
    expect(e).toMatchObject({ path: long, type: 'file' });
    expect(e!.data.toString()).toBe('x');
    // Exactly 100 bytes fits the ustar name: no pax header, one header block.
    const hundred = 'n'.repeat(100);
    expect(tarHeader({ path: hundred, type: 'file', size: 0, mode: 0o644, mtime: MTIME })).toHaveLength(512);
    expect(parseTar(archive([{ path: hundred, type: 'file' }]))[0]!.path).toBe(hundred);
  });

  it('reads a pax path of multi-byte characters whole: record lengths count bytes, not UTF-16 units', () => {
    const long = `${'d'.repeat(60)}/${'é'.repeat(80)}/${'😀'.repeat(10)}.txt`;
    const parts = [tarHeader({ path: long, type: 'file', size: 1, mode: 0o644, mtime: MTIME }), Buffer.from('x'), Buffer.alloc(511), TAR_END];
    expect(parseTar(Buffer.concat(parts)).map((e) => e.path)).toEqual([long]);
  });

  it('reads ustar prefix fields and other tools\' headers (uid 1000, mode in octal)', () => {
    expect(parseTar(ustarOf([{ name: 'a/b', type: '0', content: 'abc' }, { name: 'd', type: '5' }, { name: 'l', type: '2', linkname: '/etc/passwd' }])).map((e) => [e.path, e.type, e.data.toString()]))
      .toEqual([['a/b', 'file', 'abc'], ['d', 'dir', ''], ['l', 'symlink', '']]);
    expect(parseTar(tarOf([{ name: 'x/' }, { name: 'x/y', data: Buffer.alloc(1025, 1) }]))[1]!.data).toHaveLength(1025);
  });

  it('scans in place: members carry offsets into the archive, not copies of their data', () => {
    const tar = archive([{ path: 'a', type: 'file', data: 'hello' }, { path: 'b', type: 'file', data: 'x'.repeat(600) }]);
    const reads: [number, number][] = [];
    const members = scanTar((p, n) => (reads.push([p, n]), tar.subarray(p, p + n)), tar.length);
    expect(members.map((m) => [m.path, m.offset, m.size])).toEqual([['a', 512, 5], ['b', 1536, 600]]);
    expect(tar.subarray(members[0]!.offset, members[0]!.offset + 5).toString()).toBe('hello');
    // Only headers are read: never a member's data.
    expect(reads.every(([, n]) => n === 512)).toBe(true);
  });

  it.each([
    ['an empty buffer', () => Buffer.alloc(0), 'empty'],
    ['less than a block', () => Buffer.alloc(100, 1), 'shorter than one tar block'],
    ['a corrupted header', () => { const t = archive([{ path: 'a', type: 'file', data: 'x' }]); t[10] = t[10]! ^ 0xff; return t; }, 'bad header checksum at byte 0'],
    ['random bytes', () => Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7919) & 0xff)), 'bad header checksum'],
    ['a member cut short', () => archive([{ path: 'a', type: 'file', data: 'x'.repeat(2000) }]).subarray(0, 1024), 'truncated tar archive'],
  ])('refuses %s, saying why', (_what, make, why) => {
    expect(() => parseTar(make())).toThrow(why);
  });

  it('refuses a size field claiming more than the archive holds, even in GNU base-256', () => {
    const h = tarHeader({ path: 'big', type: 'file', size: 0, mode: 0o644, mtime: MTIME });
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h.writeUIntBE(2 ** 40, 130, 6); // a terabyte
    h.write('        ', 148, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    expect(() => parseTar(Buffer.concat([h, TAR_END]))).toThrow('truncated tar archive');
  });

  it('counts every header against the entry limit, and bounds the size of a long-name record', () => {
    const three = archive([{ path: 'a', type: 'file' }, { path: 'b', type: 'file' }, { path: 'c', type: 'file' }]);
    expect(() => scanTar((p, n) => three.subarray(p, p + n), three.length, 2)).toThrow('more than 2 entries');
    expect(scanTar((p, n) => three.subarray(p, p + n), three.length, 3)).toHaveLength(3);
    const longName = Buffer.from('x'.repeat(70_000));
    const l = tarHeader({ path: '././@LongLink', type: 'file', size: longName.length, mode: 0o644, mtime: MTIME });
    l.write('L', 156, 'ascii');
    l.write('        ', 148, 'ascii');
    let sum = 0;
    for (const b of l) sum += b;
    l.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    expect(() => parseTar(Buffer.concat([l, longName, Buffer.alloc(pad(longName.length)), TAR_END]))).toThrow(/70000-byte long-name record/);
  });

  it('stops at the first zero block, ignoring what follows', () => {
    const tar = Buffer.concat([archive([{ path: 'a', type: 'file', data: 'x' }]), Buffer.from('garbage after the end')]);
    expect(parseTar(tar).map((e) => e.path)).toEqual(['a']);
  });
});
