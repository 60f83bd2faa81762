import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ustarOf } from '../support/tar.ts';
import { createSandbox, execIn, SANDBOX_UID, startDaemon, type Daemon } from '../support/daemon.ts';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** A fingerprint of everything outside one sandbox's workspace that a hostile path could reach. */
function hostFingerprint(d: Daemon, otherWorkspace: string): string {
  const h = createHash('sha256');
  for (const f of ['/etc/passwd', '/etc/hostname', join(d.dataDir, 'sentinel')]) h.update(f).update(readFileSync(f));
  for (const dir of [d.dataDir, join(d.dataDir, 'workspaces'), otherWorkspace, join(otherWorkspace, 'workspace/app')]) {
    h.update(dir).update(readdirSync(dir).sort().join('\n'));
  }
  // Only the names the hostile writes aim at: the rest of /tmp belongs to whatever else runs on the host.
  for (const name of ['escape', 'escape.txt', 'x', 'x.txt', 'made', 'pwned.txt', 'inside-link', 'esc']) h.update(`${name}:${existsSync(join('/tmp', name))}`);
  h.update(readFileSync(join(otherWorkspace, 'workspace/app/index.html')));
  return h.digest('hex');
}

/** A tar with one entry, for hostile uploads. */
const tarOf = (name: string, type: '0' | '2' | '5', content = '', linkname = ''): Buffer => ustarOf([{ name, type, content, linkname }]);

describe('files API', () => {
  let d: Daemon;
  let id: string;
  let other: string;
  let otherWs: string;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_FILE_READ_MAX_BYTES: '65536', SANDBOXD_FILE_WRITE_MAX_BYTES: '131072' } });
    id = await createSandbox(d);
    other = await createSandbox(d);
    otherWs = join(d.dataDir, 'workspaces', other);
    writeFileSync(join(d.dataDir, 'sentinel'), 'untouched');
  });
  afterAll(() => d?.cleanup());

  const base = () => `/v1/sandboxes/${id}`;
  const ws = (...p: string[]) => join(d.dataDir, 'workspaces', id, ...p);
  const raw = (method: string, path: string, body?: string | Buffer) => fetch(`${d.url}${base()}${path}`, { method, ...(body !== undefined ? { body } : {}) });

  it("writes with the README's JSON body, appends, and reads back raw and as JSON", async () => {
    expect((await d.api('PUT', `${base()}/files`, { path: 'notes/a.txt', content: 'one\n' })).body).toMatchObject({ bytes: 4, appended: false });
    expect((await d.api('PUT', `${base()}/files`, { path: 'notes/a.txt', content: 'two\n', append: true })).body).toMatchObject({ appended: true });
    expect(await (await raw('GET', '/files?path=notes/a.txt')).text()).toBe('one\ntwo\n');
    expect((await d.api('GET', `${base()}/files?path=notes/a.txt&encoding=utf8`)).body).toMatchObject({ content: 'one\ntwo\n', size: 8 });
    const st = statSync(ws('workspace/app/notes/a.txt'));
    expect([st.uid, st.gid]).toEqual([SANDBOX_UID, SANDBOX_UID]);
    expect(statSync(ws('workspace/app/notes')).uid).toBe(SANDBOX_UID);
    expect((await execIn(id, ['cat', '/home/sandbox/workspace/app/notes/a.txt'])).output).toBe('one\ntwo\n');
  });

  it('round-trips every byte value through a raw upload and a base64 read, and through JSON base64', async () => {
    expect((await raw('PUT', '/files?path=bin/all.bin', ALL_BYTES)).status).toBe(200);
    expect(Buffer.from(await (await raw('GET', '/files?path=bin/all.bin')).arrayBuffer())).toEqual(ALL_BYTES);
    const json = (await d.api('GET', `${base()}/files?path=bin/all.bin&encoding=base64`)).body;
    expect(Buffer.from(json.content, 'base64')).toEqual(ALL_BYTES);
    await d.api('PUT', `${base()}/files`, { path: 'bin/copy.bin', content: ALL_BYTES.toString('base64'), encoding: 'base64' });
    expect(readFileSync(ws('workspace/app/bin/copy.bin'))).toEqual(ALL_BYTES);
    expect((await d.api('GET', `${base()}/files?path=bin/all.bin&encoding=utf8`)).status).toBe(400);
  });

  it('handles non-ASCII names, home paths, listing, ranges, mkdir, move and delete', async () => {
    await d.api('PUT', `${base()}/files`, { path: 'ünïcødé/日本.txt', content: 'こんにちは' });
    expect(await (await raw('GET', `/files?path=${encodeURIComponent('ünïcødé/日本.txt')}`)).text()).toBe('こんにちは');
    await d.api('PUT', `${base()}/files`, { path: '~/.config/app.json', content: '{}' });
    expect(readFileSync(ws('.config/app.json'), 'utf8')).toBe('{}');
    const listing = (await d.api('GET', `${base()}/files?path=~/&recursive=true`)).body;
    expect(listing.entries.map((e: any) => e.path)).toEqual(expect.arrayContaining(['.config/app.json', 'workspace/app/ünïcødé/日本.txt']));
    await raw('PUT', '/files?path=r.txt', '0123456789');
    const part = await raw('GET', '/files?path=r.txt&offset=3&length=4');
    expect([await part.text(), part.headers.get('content-range')]).toEqual(['3456', 'bytes 3-6/10']);
    expect((await d.api('POST', `${base()}/files/mkdir`, { path: 'deep/er/dir' })).status).toBe(200);
    expect(statSync(ws('workspace/app/deep/er/dir')).uid).toBe(SANDBOX_UID);
    expect((await d.api('POST', `${base()}/files/move`, { from: 'r.txt', to: 'deep/r2.txt' })).status).toBe(200);
    expect((await d.api('POST', `${base()}/files/move`, { from: 'deep/r2.txt', to: 'notes/a.txt' })).status).toBe(409);
    expect((await d.api('DELETE', `${base()}/files?path=deep`)).status).toBe(409);
    expect((await d.api('DELETE', `${base()}/files?path=deep&recursive=true`)).status).toBe(200);
    expect((await d.api('GET', `${base()}/files?path=deep`)).status).toBe(404);
  });

  it('downloads a directory as a tar and extracts an uploaded one', async () => {
    await d.api('PUT', `${base()}/files`, { path: 'pack/x/y.txt', content: 'why' });
    const tar = Buffer.from(await (await raw('GET', '/archive?path=pack')).arrayBuffer());
    expect(tar.subarray(0, 2).toString()).toBe('x/');
    expect(tar.toString('latin1')).toContain('why');
    const up = await raw('PUT', '/archive?path=unpacked', tar);
    expect(await up.json()).toMatchObject({ files: 1, dirs: 1, skipped: 0 });
    expect(readFileSync(ws('workspace/app/unpacked/x/y.txt'), 'utf8')).toBe('why');
    expect(statSync(ws('workspace/app/unpacked/x/y.txt')).uid).toBe(SANDBOX_UID);
  });

  it('works while the sandbox is stopped, without waking it', async () => {
    await d.api('POST', `${base()}/stop`);
    expect((await d.api('PUT', `${base()}/files`, { path: 'asleep.txt', content: 'zz' })).status).toBe(200);
    expect(await (await raw('GET', '/files?path=asleep.txt')).text()).toBe('zz');
    expect((await d.api('DELETE', `${base()}/files?path=notes&recursive=true`)).status).toBe(200);
    expect((await d.api('GET', base())).body.status).toBe('stopped');
    await d.api('POST', `${base()}/start`);
  });

  it('refuses oversized reads and writes with 413', async () => {
    writeFileSync(ws('workspace/app/big.bin'), Buffer.alloc(70_000));
    expect((await d.api('GET', `${base()}/files?path=big.bin`)).status).toBe(413);
    expect((await raw('GET', '/files?path=big.bin&offset=0&length=1000')).status).toBe(200);
    expect((await raw('PUT', '/files?path=huge.bin', Buffer.alloc(200_000))).status).toBe(413);
    expect((await d.api('PUT', `${base()}/files`, { path: 'huge.txt', content: 'x'.repeat(200_000) })).status).toBe(413);
  });

  describe('hostile paths', () => {
    beforeAll(async () => {
      // Planted from inside the sandbox, as a hostile app would.
      const plant = [
        'cd /home/sandbox/workspace/app',
        'ln -s / rootlink', 'ln -s /etc/passwd pwlink', `ln -s /home/sandbox/../../../.. uplink`,
        'mkdir -p real && ln -s real dirlink', 'ln -s /tmp tmplink', 'mkfifo fifo',
        'ln -s ../../../../../../ relup',
      ].join(' && ');
      expect((await execIn(id, ['sh', '-c', plant])).code).toBe(0);
    });

    const otherPath = () => join(d.dataDir, 'workspaces', other, 'workspace/app/index.html');
    const reads = () => [
      '../x', 'a/../../x', '../../../etc/passwd', '/etc/passwd', '/home/sandbox/../etc/passwd', '~/../x', '~/../../etc/passwd',
      'rootlink/etc/passwd', 'pwlink', 'uplink/etc/passwd', 'relup/etc/passwd', 'tmplink/x', 'fifo', 'a\u0000b',
      otherPath(), `/home/sandbox/../../${d.dataDir}/sentinel`, `..%2F..%2Fetc%2Fpasswd`, '....//....//etc/passwd/..',
      'dirlink/../../../../etc/passwd', 'real/../../../x', '//etc/passwd', '~root/.bashrc', 'rootlink', 'uplink', 'tmplink',
      `/proc/self/root/etc/passwd`, '~/workspace/app/rootlink/proc/1/environ',
    ];
    const writes = () => [
      '../escape.txt', 'a/../../escape.txt', '/etc/escape', '~/../escape', 'rootlink/tmp/escape', 'uplink/tmp/escape',
      'relup/tmp/escape', 'tmplink/escape', 'fifo', 'dirlink/inside-link', otherPath(), 'x\u0000y',
    ];

    it('R5: refuses at least 50 hostile reads and writes with a 4xx and touches nothing outside the workspace', async () => {
      const before = hostFingerprint(d, otherWs);
      let refused = 0;
      for (const p of reads()) {
        const r = await d.api('GET', `${base()}/files?path=${encodeURIComponent(p)}`);
        expect(r.status, `read ${p}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `read ${p}`).toBeLessThan(500);
        refused++;
      }
      for (const p of writes()) {
        for (const append of [false, true]) {
          const r = await d.api('PUT', `${base()}/files`, { path: p, content: 'pwned', append });
          expect(r.status, `write ${p} append=${append}`).toBeGreaterThanOrEqual(400);
          expect(r.status, `write ${p} append=${append}`).toBeLessThan(500);
          refused++;
        }
      }
      for (const q of ['path=rootlink/tmp/x', 'path=dirlink/y']) {
        expect((await raw('PUT', `/files?${q}`, 'pwned')).status).toBe(400);
        refused++;
      }
      expect((await d.api('POST', `${base()}/files/move`, { from: 'notes', to: '../../outside' })).status).toBe(400);
      expect((await d.api('POST', `${base()}/files/mkdir`, { path: 'rootlink/tmp/made' })).status).toBe(400);
      expect((await d.api('DELETE', `${base()}/files?path=~/`)).status).toBe(400);
      expect((await d.api('DELETE', `${base()}/files?path=~/workspace`)).status).toBe(400);
      refused += 4;
      expect(refused).toBeGreaterThanOrEqual(50);
      expect(hostFingerprint(d, otherWs)).toBe(before);
      expect(readFileSync('/etc/passwd', 'utf8')).not.toContain('pwned');
    });

    it('refuses tars that climb out, or write through a link they or the sandbox planted', async () => {
      const before = hostFingerprint(d, otherWs);
      for (const tar of [tarOf('../escape.txt', '0', 'x'), tarOf('/abs.txt', '0', 'x'), tarOf('a/../../escape.txt', '0', 'x')]) {
        expect((await raw('PUT', '/archive?path=t', tar)).status).toBe(400);
      }
      const linkThenFile = Buffer.concat([tarOf('esc', '2', '', '/tmp').subarray(0, 512), tarOf('esc/pwned.txt', '0', 'x')]);
      const r = await raw('PUT', '/archive?path=t2', linkThenFile);
      expect(r.status === 400 || (r.status === 200 && ((await r.json()) as any).skipped === 1)).toBe(true);
      expect((await raw('PUT', '/archive?path=rootlink/tmp', tarOf('x.txt', '0', 'x'))).status).toBe(400);
      expect(hostFingerprint(d, otherWs)).toBe(before);
    });

    it('replaces a planted link with a file on write, never writing through it', async () => {
      await execIn(id, ['ln', '-s', '/etc/hostname', '/home/sandbox/workspace/app/hostlink']);
      const hostname = readFileSync('/etc/hostname', 'utf8');
      expect((await d.api('PUT', `${base()}/files`, { path: 'hostlink', content: 'mine' })).status).toBe(200);
      expect(readFileSync('/etc/hostname', 'utf8')).toBe(hostname);
      expect((await d.api('GET', `${base()}/files?path=.`)).body.entries.find((e: any) => e.name === 'hostlink').type).toBe('file');
      expect(await (await raw('GET', '/files?path=hostlink')).text()).toBe('mine');
    });

    it('deletes a planted link itself, never what it points at', async () => {
      expect((await d.api('DELETE', `${base()}/files?path=pwlink`)).status).toBe(200);
      expect(readFileSync('/etc/passwd', 'utf8').length).toBeGreaterThan(0);
      expect((await d.api('GET', `${base()}/files?path=.`)).body.entries.map((e: any) => e.name)).not.toContain('pwlink');
    });
  });
});
