/** One entry of a tar archive: regular files carry data; other kinds only their name. */
export interface TarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  data: Buffer;
}

const BLOCK = 512;

/** Parses a whole ustar/pax/GNU tar held in memory (small archives: image skeletons). */
export function parseTar(buf: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longPath: string | undefined;
  while (offset + BLOCK <= buf.length) {
    const header = buf.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = readNumber(header.subarray(124, 136));
    const flag = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    const data = buf.subarray(dataStart, dataStart + size);
    if (data.length < size) throw new Error('truncated tar archive');
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (flag === 'x') {
      longPath = paxPath(data) ?? longPath;
      continue;
    }
    if (flag === 'L') {
      longPath = cString(data);
      continue;
    }
    if (flag === 'g') continue;
    const prefix = cString(header.subarray(345, 500));
    const name = cString(header.subarray(0, 100));
    const path = longPath ?? (prefix ? `${prefix}/${name}` : name);
    longPath = undefined;
    const type = flag === '0' || flag === '\0' ? 'file' : flag === '5' ? 'dir' : flag === '2' ? 'symlink' : 'other';
    entries.push({ path, type, mode: readNumber(header.subarray(100, 108)), data: type === 'file' ? Buffer.from(data) : Buffer.alloc(0) });
  }
  return entries;
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
  let rest = data.toString('utf8');
  while (rest.length) {
    const space = rest.indexOf(' ');
    const len = Number(rest.slice(0, space));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = rest.slice(space + 1, len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    rest = rest.slice(len);
  }
  return path;
}
