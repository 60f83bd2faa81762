import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** Where uploads wait on disk (never in memory) until they are checked and unpacked: `<data dir>/spool`, root-only. */
export function spoolDir(dataDir: string): string {
  return join(dataDir, 'spool');
}

/** Makes the spool directory and empties it of uploads an earlier daemon left behind when it died. */
export function resetSpool(dataDir: string): void {
  const dir = spoolDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true, recursive: true });
}

/** An upload held in a spool file; `close()` removes it. */
export interface Spooled {
  handle: FileHandle;
  size: number;
  close(): Promise<void>;
}

/** Streams a body to a new spool file (the caller caps it), answering the open file; a failure leaves no file behind. */
export async function spool(dataDir: string, body: AsyncIterable<Buffer>): Promise<Spooled> {
  const dir = spoolDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `upload-${randomBytes(8).toString('hex')}`);
  const handle = await open(path, 'wx+', 0o600);
  const close = async () => {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
  };
  let size = 0;
  try {
    for await (const chunk of body) {
      await handle.write(chunk, 0, chunk.length, size);
      size += chunk.length;
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { handle, size, close };
}
