import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, type ErrorCode } from '../../src/errors.ts';
import { newId } from '../../src/ids.ts';
import type { WorkspaceStore } from '../../src/workspaces/workspace-store.ts';
import { parseTar, tarOf, ustarOf } from '../support/tar.ts';

/**
 * One WorkspaceStore backend under test, with what a sandbox can do to its own home from inside (outside the
 * store: plant links and FIFOs) and a view of what lies outside every home. Every backend must pass
 * `workspaceStoreContract` with it.
 */
export interface WorkspaceBackend {
  store: WorkspaceStore;
  /** The size limit a new home gets, in MiB. */
  limitMb: number;
  /** Makes a new home for a sandbox as a create does (holding workspace/app). */
  createHome(sandboxId: string): Promise<void>;
  /** Plants a symbolic link in a home, as the sandbox's own processes could. */
  plantLink(sandboxId: string, parts: string[], target: string): Promise<void>;
  /** Plants a FIFO in a home, as the sandbox's own processes could. */
  plantFifo(sandboxId: string, parts: string[]): Promise<void>;
  /** Link targets that lead out of every home: a directory holding files, and a file. */
  outside: { dir: string; file: string };
  /** A digest of everything outside the homes a store could wrongly touch; unchanged means untouched. */
  outsideFingerprint(): Promise<string>;
  /** Strings no error may show a client (host paths). */
  hidden: string[];
  /** Removes every home and everything else this backend made. */
  cleanup(): Promise<void>;
}

async function bytesOf(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

async function* once(buf: Buffer): AsyncIterable<Buffer> {
  yield buf;
}

/** Polls `fn` until it answers true; fails naming `what` when `ms` passes first. */
async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Names of the path components a store must refuse: every one either climbs out or is not a single name. */
const NOT_NAMES: string[][] = [['..'], ['..', '..'], ['workspace', '..', '..'], ['workspace/../..'], ['workspace/app'], ['.'], [''], ['nul\0name']];

/** The behaviour every WorkspaceStore backend must show, run against `makeBackend`. */
export function workspaceStoreContract(name: string, makeBackend: () => Promise<WorkspaceBackend>): void {
  describe(`WorkspaceStore contract: ${name}`, () => {
    let b: WorkspaceBackend;
    let store: WorkspaceStore;
    /** The home under test and a neighbour's. */
    let home: string;
    let neighbour: string;

    beforeAll(async () => {
      b = await makeBackend();
      store = b.store;
      home = newId();
      neighbour = newId();
      await b.createHome(home);
      await b.createHome(neighbour);
    });
    afterAll(async () => {
      await b?.cleanup();
    });

    /**
     * Runs `op` and answers what is wrong with how it failed: undefined when it was refused with an AppError
     * of `code` whose message names no host path.
     */
    const refusal = async (label: string, op: () => Promise<unknown>, code: ErrorCode = 'invalid_request'): Promise<string | undefined> => {
      try {
        await op();
        return `${label}: was not refused`;
      } catch (err) {
        if (!(err instanceof AppError)) return `${label}: threw ${String(err)}, not an AppError`;
        if (err.code !== code) return `${label}: refused as ${err.code} (${err.message}), not ${code}`;
        const shown = b.hidden.find((h) => err.message.includes(h));
        return shown ? `${label}: the message names the host path ${shown}` : undefined;
      }
    };
    const text = async (sandboxId: string, parts: string[]) => (await store.read(sandboxId, parts, {}, 1 << 20)).data.toString('utf8');
    const neighbourView = async () => JSON.stringify((await store.list(neighbour, [], true, 1000)).entries.map((e) => [e.path, e.type, e.size]));

    it('makes a home holding workspace/app, whose usage is MiB figures >= 0 within its limit', async () => {
      expect((await store.stat(home, []))?.type).toBe('dir');
      expect((await store.stat(home, ['workspace', 'app']))?.type).toBe('dir');
      const usage = await store.diskUsage(home);
      expect(usage?.limitMb).toBe(b.limitMb);
      expect(Number.isFinite(usage?.usedMb)).toBe(true);
      expect(usage!.usedMb).toBeGreaterThanOrEqual(0);
      expect(usage!.usedMb).toBeLessThanOrEqual(usage!.limitMb);
    });

    it('counts what is written in the usage, and gives it back once removed', async () => {
      const before = (await store.diskUsage(home))!.usedMb;
      await store.write(home, ['big.bin'], randomBytes(8 << 20));
      await until('usage to count 8 MiB more', async () => (await store.diskUsage(home))!.usedMb >= before + 7);
      await store.remove(home, ['big.bin']);
      await until('usage to fall back', async () => (await store.diskUsage(home))!.usedMb <= before + 1);
    });

    it('writes a file and reads it back whole and by range; a read above maxBytes is refused as too_large', async () => {
      expect(await store.write(home, ['workspace', 'app', 'hello.txt'], Buffer.from('hello world'))).toBe(11);
      expect(await store.stat(home, ['workspace', 'app', 'hello.txt'])).toMatchObject({ name: 'hello.txt', type: 'file', size: 11 });
      expect(await store.read(home, ['workspace', 'app', 'hello.txt'], {}, 100)).toEqual({ data: Buffer.from('hello world'), size: 11, offset: 0 });
      expect(await store.read(home, ['workspace', 'app', 'hello.txt'], { offset: 6, length: 5 }, 5)).toEqual({ data: Buffer.from('world'), size: 11, offset: 6 });
      expect(await refusal('read above maxBytes', () => store.read(home, ['workspace', 'app', 'hello.txt'], {}, 5), 'too_large')).toBeUndefined();
      expect(await store.write(home, ['workspace', 'app', 'hello.txt'], once(Buffer.from('replaced')))).toBe(8);
      expect(await text(home, ['workspace', 'app', 'hello.txt'])).toBe('replaced');
      expect(await store.stat(home, ['workspace', 'app', 'missing.txt'])).toBeUndefined();
      expect(await refusal('read of a missing file', () => store.read(home, ['workspace', 'app', 'missing.txt'], {}, 100), 'not_found')).toBeUndefined();
    });

    it('appends to a file, creating it when missing', async () => {
      expect(await store.append(home, ['log.txt'], Buffer.from('one\n'))).toBe(4);
      expect(await store.append(home, ['log.txt'], once(Buffer.from('two\n')))).toBe(4);
      expect(await text(home, ['log.txt'])).toBe('one\ntwo\n');
    });

    it('lists a directory sorted by name, recursively with paths, and says when the limit cut it short', async () => {
      await store.mkdirs(home, ['tree', 'b']);
      await store.mkdirs(home, ['tree', 'b']);
      for (const p of [['tree', 'c.txt'], ['tree', 'a.txt'], ['tree', 'b', 'x.txt']]) await store.write(home, p, Buffer.from('x'));
      const flat = await store.list(home, ['tree'], false, 100);
      expect(flat.entries.map((e) => [e.path, e.type])).toEqual([['a.txt', 'file'], ['b', 'dir'], ['c.txt', 'file']]);
      expect(flat.truncated).toBe(false);
      expect((await store.list(home, ['tree'], true, 100)).entries.map((e) => e.path)).toEqual(['a.txt', 'b', 'b/x.txt', 'c.txt']);
      const cut = await store.list(home, ['tree'], true, 2);
      expect(cut.entries).toHaveLength(2);
      expect(cut.truncated).toBe(true);
    });

    it('moves within the home, refusing an existing target as a conflict unless overwrite', async () => {
      await store.write(home, ['from.txt'], Buffer.from('moved'));
      await store.write(home, ['taken.txt'], Buffer.from('taken'));
      expect(await refusal('move onto an existing file', () => store.move(home, ['from.txt'], ['taken.txt'], false), 'conflict')).toBeUndefined();
      expect(await text(home, ['taken.txt'])).toBe('taken');
      await store.move(home, ['from.txt'], ['taken.txt'], true);
      expect(await text(home, ['taken.txt'])).toBe('moved');
      expect(await store.stat(home, ['from.txt'])).toBeUndefined();
    });

    it('removes a file and an empty directory, refuses a non-empty directory as a conflict, and removes it whole with removeTree', async () => {
      await store.mkdirs(home, ['gone', 'empty']);
      await store.write(home, ['gone', 'f.txt'], Buffer.from('x'));
      await store.remove(home, ['gone', 'empty']);
      expect(await refusal('remove of a non-empty directory', () => store.remove(home, ['gone']), 'conflict')).toBeUndefined();
      await store.remove(home, ['gone', 'f.txt']);
      await store.mkdirs(home, ['gone', 'deep', 'er']);
      await store.write(home, ['gone', 'deep', 'er', 'f.txt'], Buffer.from('x'));
      await store.removeTree(home, ['gone']);
      expect(await store.stat(home, ['gone'])).toBeUndefined();
    });

    it('archives a directory and takes the archive in elsewhere, writing nothing before unpack', async () => {
      await store.mkdirs(home, ['src', 'd']);
      await store.write(home, ['src', 'a.txt'], Buffer.from('alpha'));
      await store.write(home, ['src', 'd', 'b.txt'], Buffer.from('beta'));
      const tar = await bytesOf(await store.archive(home, ['src']));
      expect(parseTar(tar).map((e) => e.path.replace(/\/$/, '')).sort()).toEqual(['a.txt', 'd', 'd/b.txt']);
      const upload = await store.receiveArchive(home, ['dst'], once(tar));
      try {
        expect(upload).toMatchObject({ files: 2, dirs: 1, skipped: 0 });
        expect(await store.stat(home, ['dst'])).toBeUndefined();
        await upload.unpack(() => false);
      } finally {
        await upload.close();
      }
      expect(await text(home, ['dst', 'a.txt'])).toBe('alpha');
      expect(await text(home, ['dst', 'd', 'b.txt'])).toBe('beta');
    });

    it('keeps what is written to one home out of every other', async () => {
      const seen = await neighbourView();
      await store.mkdirs(home, ['workspace', 'app', 'only-here']);
      await store.write(home, ['workspace', 'app', 'only-here', 'f.txt'], Buffer.from('mine'));
      await store.append(home, ['workspace', 'app', 'only-here.log'], Buffer.from('mine'));
      expect(await store.stat(neighbour, ['workspace', 'app', 'only-here'])).toBeUndefined();
      expect(await store.stat(neighbour, ['workspace', 'app', 'only-here.log'])).toBeUndefined();
      expect(await neighbourView()).toBe(seen);
    });

    it('answers not_found, naming no host path, for a sandbox that has no home, and no usage for it', async () => {
      const homeless = newId();
      const problems = (await Promise.all([
        refusal('stat', () => store.stat(homeless, ['workspace']), 'not_found'),
        refusal('list', () => store.list(homeless, [], false, 10), 'not_found'),
        refusal('read', () => store.read(homeless, ['f.txt'], {}, 10), 'not_found'),
        refusal('write', () => store.write(homeless, ['f.txt'], Buffer.from('x')), 'not_found'),
        refusal('mkdirs', () => store.mkdirs(homeless, ['d']), 'not_found'),
      ])).filter((p) => p !== undefined);
      expect(problems).toEqual([]);
      expect(await store.diskUsage(homeless)).toBeNull();
    });

    it('refuses `..`, `.`, empty, slash-holding and NUL components in every operation (invalid_request), reaching nothing outside the home', async () => {
      await store.write(neighbour, ['workspace', 'victim.txt'], Buffer.from('victim'));
      const outside = await b.outsideFingerprint();
      const seen = await neighbourView();
      const tar = tarOf([{ name: 'from-tar.txt', data: Buffer.from('escaped') }]);
      const problems: string[] = [];
      const check = async (label: string, op: () => Promise<unknown>) => {
        const p = await refusal(label, op);
        if (p) problems.push(p);
      };
      for (const bad of [...NOT_NAMES, ['..', neighbour, 'workspace']]) {
        const at = JSON.stringify(bad);
        await check(`stat ${at}`, () => store.stat(home, bad));
        await check(`list ${at}`, () => store.list(home, bad, true, 100));
        await check(`read ${at}`, () => store.read(home, [...bad, 'victim.txt'], {}, 1024));
        await check(`archive ${at}`, () => store.archive(home, bad));
        await check(`write ${at}`, () => store.write(home, [...bad, 'planted.txt'], Buffer.from('escaped')));
        await check(`append ${at}`, () => store.append(home, [...bad, 'appended.txt'], Buffer.from('escaped')));
        await check(`mkdirs ${at}`, () => store.mkdirs(home, [...bad, 'made']));
        await check(`move into ${at}`, async () => {
          // Written again each time: a move that escaped took the last copy with it.
          await store.write(home, ['mine.txt'], Buffer.from('mine'));
          await store.move(home, ['mine.txt'], [...bad, 'moved.txt'], false);
        });
        await check(`move out of ${at}`, () => store.move(home, [...bad, 'victim.txt'], ['stolen.txt'], false));
        await check(`remove ${at}`, () => store.remove(home, [...bad, 'victim.txt']));
        await check(`removeTree ${at}`, () => store.removeTree(home, [...bad, 'no-such-tree']));
        await check(`receiveArchive ${at}`, async () => {
          const upload = await store.receiveArchive(home, bad, once(tar));
          try {
            await upload.unpack(() => false);
          } finally {
            await upload.close();
          }
        });
      }
      // Soft: a store that lets one through shows here both what it let through and what that touched.
      expect.soft(problems).toEqual([]);
      expect.soft(await b.outsideFingerprint()).toBe(outside);
      expect.soft(await neighbourView()).toBe(seen);
      expect(await store.stat(neighbour, ['workspace', 'victim.txt'])).toMatchObject({ type: 'file', size: 6 });
    });

    it('refuses to go through a planted link to a directory outside, in every operation, and lists the link without following it', async () => {
      await store.mkdirs(home, ['links']);
      await b.plantLink(home, ['links', 'out'], b.outside.dir);
      await store.write(home, ['links', 'ok.txt'], Buffer.from('ok'));
      const outside = await b.outsideFingerprint();
      expect((await store.stat(home, ['links', 'out']))?.type).toBe('symlink');
      expect((await store.list(home, ['links'], true, 100)).entries.map((e) => [e.path, e.type])).toEqual([['ok.txt', 'file'], ['out', 'symlink']]);
      const problems = (await Promise.all([
        refusal('stat through it', () => store.stat(home, ['links', 'out', 'a.txt'])),
        refusal('list it', () => store.list(home, ['links', 'out'], false, 100)),
        refusal('read through it', () => store.read(home, ['links', 'out', 'a.txt'], {}, 1024)),
        refusal('write through it', () => store.write(home, ['links', 'out', 'planted.txt'], Buffer.from('escaped'))),
        refusal('append through it', () => store.append(home, ['links', 'out', 'a.txt'], Buffer.from('escaped'))),
        refusal('mkdirs through it', () => store.mkdirs(home, ['links', 'out', 'made'])),
        refusal('move into it', () => store.move(home, ['links', 'ok.txt'], ['links', 'out', 'ok.txt'], false)),
        refusal('move out of it', () => store.move(home, ['links', 'out', 'a.txt'], ['stolen.txt'], false)),
        refusal('remove through it', () => store.remove(home, ['links', 'out', 'a.txt'])),
        refusal('removeTree through it', () => store.removeTree(home, ['links', 'out', 'sub'])),
        refusal('archive it', () => store.archive(home, ['links', 'out'])),
        refusal('receiveArchive into it', async () => {
          const upload = await store.receiveArchive(home, ['links', 'out'], once(tarOf([{ name: 'from-tar.txt', data: Buffer.from('escaped') }])));
          try {
            await upload.unpack(() => false);
          } finally {
            await upload.close();
          }
        }),
      ])).filter((p) => p !== undefined);
      expect(problems).toEqual([]);
      expect(parseTar(await bytesOf(await store.archive(home, ['links']))).map((e) => e.path)).toEqual(['ok.txt']);
      expect(await b.outsideFingerprint()).toBe(outside);
      // Removing the link (even as a tree) takes the link alone.
      await store.removeTree(home, ['links', 'out']);
      expect(await store.stat(home, ['links', 'out'])).toBeUndefined();
      expect(await b.outsideFingerprint()).toBe(outside);
    });

    it('never follows a planted link to a file outside: reads and appends are refused, a write replaces the link in the home', async () => {
      await store.mkdirs(home, ['flinks']);
      await b.plantLink(home, ['flinks', 'read-me'], b.outside.file);
      await b.plantLink(home, ['flinks', 'append-me'], b.outside.file);
      await b.plantLink(home, ['flinks', 'write-me'], b.outside.file);
      const outside = await b.outsideFingerprint();
      expect(await refusal('read the link', () => store.read(home, ['flinks', 'read-me'], {}, 1 << 20))).toBeUndefined();
      expect(await refusal('append to the link', () => store.append(home, ['flinks', 'append-me'], Buffer.from('escaped')))).toBeUndefined();
      await store.write(home, ['flinks', 'write-me'], Buffer.from('in the home'));
      expect((await store.stat(home, ['flinks', 'write-me']))?.type).toBe('file');
      expect(await text(home, ['flinks', 'write-me'])).toBe('in the home');
      await store.remove(home, ['flinks', 'read-me']);
      expect(await store.stat(home, ['flinks', 'read-me'])).toBeUndefined();
      expect(await b.outsideFingerprint()).toBe(outside);
    });

    it('never opens a planted FIFO: read, append and write over it are refused without hanging, and an archive leaves it out', async () => {
      await store.mkdirs(home, ['fifos']);
      await b.plantFifo(home, ['fifos', 'pipe']);
      await store.write(home, ['fifos', 'ok.txt'], Buffer.from('ok'));
      expect((await store.stat(home, ['fifos', 'pipe']))?.type).toBe('other');
      expect(await refusal('read the FIFO', () => store.read(home, ['fifos', 'pipe'], {}, 1024))).toBeUndefined();
      expect(await refusal('append to the FIFO', () => store.append(home, ['fifos', 'pipe'], Buffer.from('x')))).toBeUndefined();
      expect(await refusal('write over the FIFO', () => store.write(home, ['fifos', 'pipe'], Buffer.from('x')))).toBeUndefined();
      expect(parseTar(await bytesOf(await store.archive(home, ['fifos']))).map((e) => e.path)).toEqual(['ok.txt']);
      await store.remove(home, ['fifos', 'pipe']);
      expect(await store.stat(home, ['fifos', 'pipe'])).toBeUndefined();
    });

    it('refuses an archive whose entries climb out, and makes no link from one', async () => {
      const outside = await b.outsideFingerprint();
      expect(await refusal('an entry climbing out', () => store.receiveArchive(home, ['climb'], once(tarOf([{ name: '../../escaped.txt', data: Buffer.from('x') }]))))).toBeUndefined();
      expect(await refusal('an absolute entry', () => store.receiveArchive(home, ['climb'], once(tarOf([{ name: '/escaped.txt', data: Buffer.from('x') }]))))).toBeUndefined();
      const upload = await store.receiveArchive(home, ['climb'], once(ustarOf([
        { name: 'out', type: '2', linkname: b.outside.dir }, { name: 'f.txt', type: '0', content: 'kept' },
      ])));
      try {
        expect(upload).toMatchObject({ files: 1, skipped: 1 });
        await upload.unpack(() => false);
      } finally {
        await upload.close();
      }
      expect((await store.list(home, ['climb'], true, 100)).entries.map((e) => [e.path, e.type])).toEqual([['f.txt', 'file']]);
      expect(await b.outsideFingerprint()).toBe(outside);
    });
  });
}
