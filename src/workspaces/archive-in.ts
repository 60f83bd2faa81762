import { readSync } from 'node:fs';
import { AppError } from '../errors.ts';
import type { ConfinedTree } from './safe-fs.ts';
import { spool } from './spool.ts';
import { scanTar, type TarMember } from './tar.ts';
import type { ArchiveUpload } from './workspace-store.ts';

/** Most headers one uploaded archive may hold; each costs a checksum on this thread and a row of the plan. */
const ARCHIVE_UPLOAD_ENTRIES = 50_000;
const WINDOW = 1 << 20;

/** Reads of a spool file through a 1 MiB window, so walking its headers costs one read per MiB, not per 512 bytes. */
function windowedReader(fd: number): (position: number, length: number) => Buffer {
  let start = 0;
  let window = Buffer.alloc(0);
  return (position, length) => {
    if (position < start || position + length > start + window.length) {
      const buf = Buffer.alloc(Math.max(WINDOW, length));
      window = buf.subarray(0, readSync(fd, buf, 0, buf.length, position));
      start = position;
    }
    return window.subarray(position - start, position - start + length);
  };
}

/** Bounds on an uploaded archive's paths: a single write's limits, plus depth and total work. */
const ENTRY_PATH_MAX = 4096;
const NAME_MAX = 255;
const DEPTH_MAX = 128;
const COMPONENTS_MAX = 500_000;
const UNPACK_DEADLINE_MS = 600_000;

/** Checks every member's path and plans where it lands, so a bad archive is refused before anything is written. */
function planArchive(members: TarMember[], base: string[]): { e: TarMember; parts: string[] }[] {
  const refuse = (rel: string, why: string) => new AppError('invalid_request', `body: the archive entry '${rel.slice(0, 200)}' ${why}`);
  const planned: { e: TarMember; parts: string[] }[] = [];
  let components = 0;
  for (const e of members) {
    const rel = e.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (!rel || rel === '.') continue;
    if (Buffer.byteLength(rel) > ENTRY_PATH_MAX) throw refuse(rel, `has a path longer than ${ENTRY_PATH_MAX} bytes`);
    if (rel.startsWith('/') || rel.includes('\0')) throw refuse(rel, 'would land outside the target directory');
    const parts = rel.split('/').filter((p) => p && p !== '.');
    if (parts.includes('..')) throw refuse(rel, 'would land outside the target directory');
    if (parts.some((p) => Buffer.byteLength(p) > NAME_MAX)) throw refuse(rel, `has a name longer than ${NAME_MAX} bytes`);
    if (parts.length > DEPTH_MAX) throw refuse(rel, `is more than ${DEPTH_MAX} directories deep`);
    components += base.length + parts.length;
    if (components > COMPONENTS_MAX) throw new AppError('too_large', `body: the archive's paths add up to more than ${COMPONENTS_MAX} path components; upload it in parts`);
    planned.push({ e, parts: [...base, ...parts] });
  }
  return planned;
}

/**
 * Spools an uploaded tar into `<dataDir>/spool` (never memory), checks it whole and plans every entry
 * under `base`; unpacking then writes each entry through the confined tree like a single write.
 */
export async function receiveArchive(tree: ConfinedTree, dataDir: string, base: string[], body: AsyncIterable<Buffer>): Promise<ArchiveUpload> {
  tree.assertNames(base);
  const upload = await spool(dataDir, body);
  let planned;
  try {
    let members;
    try {
      members = scanTar(windowedReader(upload.handle.fd), upload.size, ARCHIVE_UPLOAD_ENTRIES);
    } catch (err) {
      throw new AppError('invalid_request', `body: not a readable tar archive (${(err as Error).message})`);
    }
    planned = planArchive(members, base);
  } catch (err) {
    await upload.close();
    throw err;
  }
  const files = planned.filter((p) => p.e.type === 'file').length;
  const dirs = planned.filter((p) => p.e.type === 'dir').length;
  return {
    files,
    dirs,
    skipped: planned.length - files - dirs,
    async unpack(abandoned) {
      const deadline = Date.now() + UNPACK_DEADLINE_MS;
      await tree.mkdirs(base);
      for (const { e, parts } of planned) {
        // Unpacking is work the client asked for: it stops when the client has gone or the deadline passes.
        if (abandoned()) throw new Error('the client went away; unpacking stopped part-way');
        if (Date.now() > deadline) throw new AppError('too_large', `unpacking took longer than ${UNPACK_DEADLINE_MS / 1000} s and was stopped part-way; upload the archive in smaller parts`);
        if (e.type === 'dir') await tree.mkdirs(parts);
        else if (e.type === 'file') {
          const data = e.size ? upload.handle.createReadStream({ start: e.offset, end: e.offset + e.size - 1, autoClose: false }) : Buffer.alloc(0);
          await tree.writeAtomic(parts, data, (e.mode & 0o777) | 0o600);
        }
      }
    },
    close: () => upload.close(),
  };
}
