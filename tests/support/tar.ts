import { pad, TAR_END, tarHeader } from '../../src/workspaces/tar.ts';

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
