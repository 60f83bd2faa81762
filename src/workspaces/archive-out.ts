import { AppError } from '../errors.ts';
import type { ConfinedTree } from './safe-fs.ts';
import { pad, TAR_END, tarHeader } from './tar.ts';

const ARCHIVE_ENTRY_LIMIT = 100_000;

/**
 * The tar of one directory of a confined tree, entry by entry. The listing is taken first (a directory
 * over the entry limit is refused before the first byte); links, FIFOs and devices are left out.
 */
export async function archiveOf(tree: ConfinedTree, parts: string[]): Promise<AsyncGenerator<Buffer>> {
  const { entries, truncated } = await tree.list(parts, true, ARCHIVE_ENTRY_LIMIT);
  if (truncated) throw new AppError('too_large', `the directory holds more than ${ARCHIVE_ENTRY_LIMIT} entries; archive a subdirectory`);
  return (async function* () {
    for (const e of entries) {
      const mtime = Date.parse(e.mtime);
      if (e.type === 'dir') {
        yield tarHeader({ path: e.path, type: 'dir', size: 0, mode: 0o755, mtime });
      } else if (e.type === 'file') {
        // The sandbox may change the file while we read it: the header's size is what we send, exactly.
        const { handle, size } = await tree.openForRead([...parts, ...e.path.split('/')]).catch(() => ({ handle: undefined, size: 0 }));
        if (!handle) continue;
        try {
          yield tarHeader({ path: e.path, type: 'file', size, mode: 0o644, mtime });
          let sent = 0;
          const buf = Buffer.alloc(64 * 1024);
          while (sent < size) {
            const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - sent), sent);
            if (bytesRead === 0) break;
            yield Buffer.from(buf.subarray(0, bytesRead));
            sent += bytesRead;
          }
          if (sent < size) yield Buffer.alloc(size - sent);
          yield Buffer.alloc(pad(size));
        } finally {
          await handle.close();
        }
      }
    }
    yield TAR_END;
  })();
}
