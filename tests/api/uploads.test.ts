import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, startDaemon, type Daemon } from '../support/daemon.ts';
import { tarOf } from '../support/tar.ts';

const MiB = 1 << 20;

/** The daemon's peak resident memory so far (VmHWM), in bytes. */
function peakRss(d: Daemon): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'));
  if (!m) throw new Error('no VmHWM in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}


const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('large uploads stream to disk, never into memory', () => {
  let d: Daemon;
  let id: string;
  const ws = (...p: string[]) => join(d.dataDir, 'workspaces', id, 'workspace/app', ...p);
  const put = (path: string, body: Buffer) => fetch(`${d.url}/v1/sandboxes/${id}${path}`, { method: 'PUT', body });

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_FILE_WRITE_MAX_BYTES: String(512 * MiB), SANDBOXD_FILE_JSON_MAX_BYTES: String(MiB) } });
    id = await createSandbox(d);
  });
  afterAll(() => d?.cleanup());

  it('refuses a JSON write over its limit with 413 naming the raw upload, and writes nothing', async () => {
    const r = await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'big.txt', content: 'x'.repeat(2 * MiB) });
    expect(r.status).toBe(413);
    expect(r.body.error.message).toMatch(/SANDBOXD_FILE_JSON_MAX_BYTES/);
    expect(r.body.error.message).toMatch(/\?path=/);
    expect(readdirSync(ws())).not.toContain('big.txt');
  });

  it('writes a 192 MiB raw body and appends another without holding either in memory', async () => {
    const big = randomBytes(192 * MiB);
    // A first streamed upload grows the heap once (to the runtime's working size); the measured ones come after it.
    expect((await put('/files?path=warm-up.bin', big.subarray(0, 64 * MiB))).status).toBe(200);
    for (const path of ['/files?path=raw.bin', '/files?path=raw.bin&append=true']) {
      const before = peakRss(d);
      expect((await put(path, big)).status).toBe(200);
      // Held whole, the body alone would raise the peak by 192 MiB; streamed, only by buffers awaiting collection.
      expect(peakRss(d) - before).toBeLessThan(96 * MiB);
    }
    const written = readFileSync(ws('raw.bin'));
    expect(written.length).toBe(384 * MiB);
    expect(sha(written)).toBe(sha(Buffer.concat([big, big])));
  });

  it('unpacks a 128 MiB archive from a spool file, which it removes afterwards', async () => {
    const files = [{ name: 'a.bin', data: randomBytes(96 * MiB) }, { name: 'b.txt', data: Buffer.from('small') }, { name: 'c.bin', data: randomBytes(32 * MiB) }];
    const tar = tarOf(files);
    const before = peakRss(d);
    const r = await put('/archive?path=unpacked', tar);
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toMatchObject({ files: 3, skipped: 0 });
    expect(peakRss(d) - before).toBeLessThan(64 * MiB);
    for (const f of files) expect(sha(readFileSync(ws('unpacked', f.name)))).toBe(sha(f.data));
    expect(readdirSync(join(d.dataDir, 'spool'))).toEqual([]);
  });

  it('refuses a truncated archive with 400, unpacks none of it and leaves no spool file', async () => {
    const tar = tarOf([{ name: 'first.txt', data: Buffer.from('one') }, { name: 'second.bin', data: randomBytes(4096) }]);
    const r = await put('/archive?path=cut', tar.subarray(0, 1024 + 512));
    expect(r.status).toBe(400);
    expect(readdirSync(ws())).not.toContain('cut');
    expect(readdirSync(join(d.dataDir, 'spool'))).toEqual([]);
  });
});
