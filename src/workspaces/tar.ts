/** One member of an archive read in place: where its data starts and how long it is. */
export interface TarMember {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  offset: number;
  size: number;
}

const BLOCK = 512;
/** Longest pax or GNU long-name record read into memory; real ones are a few hundred bytes. */
const MAX_META_BYTES = 1 << 16;

/**
 * Walks a ustar/pax/GNU tar of `total` bytes through `read(position, length)`, answering its members without
 * their data (which stays where it is), so an archive of any size costs memory per entry, not per byte.
 * Throws on a bad checksum, a truncated member or more than `maxEntries` headers.
 */
export function scanTar(read: (position: number, length: number) => Buffer, total: number, maxEntries = 1_000_000): TarMember[] {
  if (total < BLOCK) throw new Error(total ? 'shorter than one tar block' : 'empty');
  const members: TarMember[] = [];
  let offset = 0;
  let longPath: string | undefined;
  let headers = 0;
  while (offset + BLOCK <= total) {
    const header = read(offset, BLOCK);
    if (header.every((b) => b === 0)) break;
    // Every header costs a read and a checksum, pax and global ones included: the bound counts them all.
    if (++headers > maxEntries) throw new Error(`more than ${maxEntries} entries`);
    if (!checksumOk(header)) throw new Error(`bad header checksum at byte ${offset}`);
    const size = readNumber(header.subarray(124, 136));
    const flag = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    if (!Number.isSafeInteger(size) || size < 0 || dataStart + size > total) throw new Error('truncated tar archive');
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (flag === 'x' || flag === 'L') {
      if (size > MAX_META_BYTES) throw new Error(`a ${size}-byte long-name record at byte ${dataStart - BLOCK}`);
      const data = read(dataStart, size);
      longPath = flag === 'x' ? paxPath(data) ?? longPath : cString(data);
      continue;
    }
    if (flag === 'g') continue;
    const prefix = cString(header.subarray(345, 500));
    const name = cString(header.subarray(0, 100));
    const path = longPath ?? (prefix ? `${prefix}/${name}` : name);
    longPath = undefined;
    const type = flag === '0' || flag === '\0' ? 'file' : flag === '5' ? 'dir' : flag === '2' ? 'symlink' : 'other';
    members.push({ path, type, mode: readNumber(header.subarray(100, 108)), offset: dataStart, size: type === 'file' ? size : 0 });
  }
  return members;
}

/** The header's checksum field against the sum of its bytes (the field itself counted as spaces). */
function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return readNumber(header.subarray(148, 156)) === sum;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

function readNumber(field: Buffer): number {
  // GNU base-256 for values that do not fit in octal.
  if ((field[0]! & 0x80) !== 0) {
    let n = field[0]! & 0x7f;
    for (const byte of field.subarray(1)) n = n * 256 + byte;
    return n;
  }
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

function paxPath(data: Buffer): string | undefined {
  let path: string | undefined;
  // Record lengths count bytes (a path may hold multi-byte characters), so records are cut from the bytes.
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = space < 0 ? NaN : Number(data.toString('latin1', at, space));
    if (!Number.isInteger(len) || len <= space - at || at + len > data.length) break;
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    at += len;
  }
  return path;
}

/** A 512-byte ustar header (with a pax record before it when the path is too long for ustar). */
export function tarHeader(e: { path: string; type: 'file' | 'dir' | 'symlink'; size: number; mode: number; mtime: number; linkname?: string }): Buffer {
  const path = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const nameBytes = Buffer.byteLength(path);
  const linkBytes = Buffer.byteLength(e.linkname ?? '');
  let pax = Buffer.alloc(0);
  if (nameBytes > 100 || linkBytes > 100) {
    const records = [['path', path], ...(linkBytes > 100 ? [['linkpath', e.linkname!]] : [])].map(([k, v]) => paxRecord(k!, v!)).join('');
    const body = Buffer.from(records);
    pax = Buffer.concat([block('PaxHeader', 'x', body.length, 0o644, e.mtime, ''), body, Buffer.alloc(pad(body.length))]);
  }
  const flag = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0';
  return Buffer.concat([pax, block(truncateUtf8(path, 100), flag, e.type === 'file' ? e.size : 0, e.mode, e.mtime, truncateUtf8(e.linkname ?? '', 100))]);
}

/** Zero bytes that bring `size` up to a whole block. */
export function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function truncateUtf8(s: string, max: number): string {
  let out = s;
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return out;
}

function block(name: string, flag: string, size: number, mode: number, mtime: number, linkname: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(1000, 8), 108, 'ascii');
  h.write(octal(1000, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(flag, 156, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('sandbox', 265, 'ascii');
  h.write('sandbox', 297, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}
