import { pad, scanTar, TAR_END, tarHeader, type TarMember } from '../../src/workspaces/tar.ts';

/** One entry of a tar read whole: regular files carry their data. */
export interface TarEntry {
  path: string;
  type: TarMember['type'];
  mode: number;
  data: Buffer;
}

/** Reads a whole tar held in memory through the daemon's own reader (archives the daemon wrote, in tests). */
export function parseTar(buf: Buffer): TarEntry[] {
  return scanTar((p, n) => buf.subarray(p, p + n), buf.length).map((m) => ({
    path: m.path, type: m.type, mode: m.mode, data: m.type === 'file' ? Buffer.from(buf.subarray(m.offset, m.offset + m.size)) : Buffer.alloc(0),
  }));
}

/** A tar of regular files (with data) and directories (paths ending in /), written by the daemon's own tar writer. */
export function tarOf(entries: { name: string; data?: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const dir = e.name.endsWith('/');
    const data = e.data ?? Buffer.alloc(0);
    blocks.push(tarHeader({ path: e.name, type: dir ? 'dir' : 'file', size: dir ? 0 : data.length, mode: 0o644, mtime: Date.now() }));
    if (!dir) blocks.push(data, Buffer.alloc(pad(data.length)));
  }
  blocks.push(TAR_END);
  return Buffer.concat(blocks);
}

/** A tar of the given entries (regular files '0', directories '5', symlinks '2'). */
export function ustarOf(entries: { name: string; type: '0' | '2' | '5'; content?: string; linkname?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { name, type, content = '', linkname = '' } of entries) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write(type === '5' ? '0000755\0' : '0000644\0', 100);
    h.write('0001750\0', 108);
    h.write('0001750\0', 116);
    h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write(linkname, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
    body.write(content);
    blocks.push(h, body);
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}
