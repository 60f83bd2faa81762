import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { runtimeFailureOf, RuntimeSetupError, type ExecSession, type Runtime, type RuntimeEvent, type SandboxSpec } from '../../src/runtime/runtime.ts';
import type { ExecSpec } from '../../src/model/exec.ts';

/**
 * One backend under test: a Runtime with an instance of its own (its own label and network), and what a
 * create needs from the world around it. Every Runtime backend must pass `runtimeContract` with it.
 */
export interface RuntimeBackend {
  runtime: Runtime;
  /** The uid commands in its sandboxes run as (SANDBOXD_SANDBOX_UID). */
  uid: number;
  /** A spec for a new sandbox of the tiny test image, its home made (empty but for workspace/app). */
  spec(sandboxId: string): Promise<SandboxSpec>;
  /** A Runtime configured like this one whose engine cannot be reached. */
  unreachable(): Runtime;
  /** Removes everything this backend made, found by its instance label: sandboxes, network, homes. */
  cleanup(): Promise<void>;
}

/** What a finished command printed, stream by stream, and its exit code. */
interface Ran {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Polls `fn` until it answers something truthy; fails naming `what` when `ms` passes first. */
async function until<T>(what: string, fn: () => Promise<T> | T, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Collects a session's output by stream as it arrives. */
function record(session: ExecSession): { stdout: () => string; stderr: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  session.onOutput((stream, chunk) => (stream === 'stdout' ? out : err).push(chunk));
  return { stdout: () => Buffer.concat(out).toString('utf8'), stderr: () => Buffer.concat(err).toString('utf8') };
}

/** An HTTP GET to an endpoint, answering the body. */
function httpGet(host: string, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Whether a TCP connection to host:port is accepted. */
function tcpConnects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * The behaviour every Runtime backend must show, run against `makeBackend` (called once per instance the
 * tests need: the one under test and a neighbour sharing its engine).
 */
export function runtimeContract(name: string, makeBackend: () => Promise<RuntimeBackend>): void {
  describe(`Runtime contract: ${name}`, () => {
    let ours: RuntimeBackend;
    let neighbour: RuntimeBackend;
    const made: RuntimeBackend[] = [];
    const backend = async () => {
      const b = await makeBackend();
      made.push(b);
      return b;
    };

    beforeAll(async () => {
      ours = await backend();
      neighbour = await backend();
      await ours.runtime.prepare({ isolation: false });
      await neighbour.runtime.prepare({ isolation: false });
    });
    afterAll(async () => {
      for (const b of made) await b.cleanup();
    });

    /** A created (not started) sandbox of backend `b`. */
    const created = async (b = ours, egress?: SandboxSpec['egress']) => {
      const id = newId();
      const containerId = await b.runtime.create({ ...(await b.spec(id)), ...(egress ? { egress } : {}) });
      return { id, containerId };
    };
    const running = async (b = ours, egress?: SandboxSpec['egress']) => {
      const { id } = await created(b, egress);
      await b.runtime.start(id);
      return id;
    };
    const exec = (id: string, cmd: string[], more: Partial<ExecSpec> = {}) => ours.runtime.exec(id, { cmd, cwd: '/home/sandbox', ...more });
    const run = async (id: string, cmd: string[], more: Partial<ExecSpec> = {}): Promise<Ran> => {
      const session = await exec(id, cmd, more);
      const out = record(session);
      const { exitCode } = await session.done;
      return { stdout: out.stdout(), stderr: out.stderr(), exitCode };
    };
    /** Whether a pid inside the sandbox is gone (a zombie counts as gone: it runs no more). */
    const pidGone = async (id: string, pid: string) => {
      const r = await run(id, ['sh', '-c', 's=$(sed "s/.*) //" /proc/$0/stat 2>/dev/null | cut -d" " -f1); [ -z "$s" ] || [ "$s" = Z ] && echo gone || echo alive', pid]);
      return r.stdout.trim() === 'gone';
    };

    it('answers ping, and names an unreachable engine as such: ping rejects as unreachable, prepare with a RuntimeSetupError of step engine', async () => {
      await expect(ours.runtime.ping()).resolves.toBeUndefined();
      const away = ours.unreachable();
      const pinged = await away.ping().then(() => undefined, (err: unknown) => err);
      expect(runtimeFailureOf(pinged)).toBe('unreachable');
      const prepared = await away.prepare({ isolation: false }).then(() => undefined, (err: unknown) => err);
      expect(prepared).toBeInstanceOf(RuntimeSetupError);
      expect((prepared as RuntimeSetupError).step).toBe('engine');
    });

    it('prepare({isolation: false}) can be repeated on a fresh backend, and sandboxes run after it', async () => {
      const fresh = await backend();
      await fresh.runtime.prepare({ isolation: false });
      await fresh.runtime.prepare({ isolation: false });
      const id = await running(fresh);
      expect((await fresh.runtime.inspect(id))?.running).toBe(true);
      await fresh.runtime.prepare({ isolation: false });
      expect((await fresh.runtime.inspect(id))?.running).toBe(true);
    });

    it('two prepare({isolation: false}) racing on a fresh backend (two daemons sharing an engine) both succeed', async () => {
      const fresh = await backend();
      const outcomes = await Promise.allSettled([fresh.runtime.prepare({ isolation: false }), fresh.runtime.prepare({ isolation: false })]);
      expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : o.status))).toEqual(['fulfilled', 'fulfilled']);
      const id = await running(fresh);
      expect((await fresh.runtime.inspect(id))?.running).toBe(true);
    });

    it('says the test image exists and an image that was never built does not', async () => {
      const { image } = await ours.spec(newId());
      expect(await ours.runtime.imageExists(image)).toBe(true);
      expect(await ours.runtime.imageExists(`sandboxed/never-built-${newId().toLowerCase()}:latest`)).toBe(false);
    });

    it('creates a sandbox without starting it: inspect reports its instance id, not running, never started', async () => {
      const { id, containerId } = await created();
      const state = await ours.runtime.inspect(id);
      expect(state).toMatchObject({ containerId, sandboxId: id, running: false, startedAt: null });
      expect(await ours.runtime.endpoint(id, 3000)).toBeNull();
    });

    it('refuses a second create of the same sandbox as a conflict and keeps the first instance, the only one listed', async () => {
      const { id, containerId } = await created();
      const again = await ours.runtime.create(await ours.spec(id)).then(() => undefined, (err: unknown) => err);
      expect(runtimeFailureOf(again)).toBe('conflict');
      expect((await ours.runtime.inspect(id))?.containerId).toBe(containerId);
      expect((await ours.runtime.list()).filter((c) => c.sandboxId === id).map((c) => c.containerId)).toEqual([containerId]);
    });

    it('starts twice without error into one running instance with a start time', async () => {
      const { id, containerId } = await created();
      await ours.runtime.start(id);
      await ours.runtime.start(id);
      const state = await ours.runtime.inspect(id);
      expect(state).toMatchObject({ containerId, running: true, exitCode: 0 });
      expect(typeof state?.startedAt).toBe('string');
      expect((await ours.runtime.list()).filter((c) => c.sandboxId === id)).toHaveLength(1);
    });

    it('stops twice, stops a never-started and a missing sandbox without error; a stopped one reports not running with a finish time and starts again', async () => {
      const id = await running();
      await ours.runtime.stop(id, 2);
      const stopped = await ours.runtime.inspect(id);
      expect(stopped?.running).toBe(false);
      expect(typeof stopped?.finishedAt).toBe('string');
      await ours.runtime.stop(id, 2);
      expect((await ours.runtime.inspect(id))?.running).toBe(false);
      const { id: idle } = await created();
      await ours.runtime.stop(idle, 2);
      await ours.runtime.stop(idle, 2);
      await ours.runtime.stop(newId(), 2);
      await ours.runtime.stop(newId(), 2);
      await ours.runtime.start(id);
      expect((await ours.runtime.inspect(id))?.running).toBe(true);
    });

    it('reports a sandbox whose main process ended on its own as not running, with its exit code', async () => {
      const id = await running();
      // The sandbox's own user may signal its init, which hands the signal to the image's server and exits with it.
      await run(id, ['kill', '-TERM', '1']);
      const ended = await until('the instance to stop by itself', async () => {
        const state = await ours.runtime.inspect(id);
        return state && !state.running ? state : undefined;
      });
      expect(ended).toMatchObject({ running: false, exitCode: 128 + 15, oomKilled: false });
      expect(typeof ended.finishedAt).toBe('string');
      expect(await ours.runtime.endpoint(id, 3000)).toBeNull();
    });

    it('removes a running sandbox, and removes it again and a missing one without error; then neither inspect nor list has it', async () => {
      const id = await running();
      await ours.runtime.remove(id);
      await ours.runtime.remove(id);
      await ours.runtime.remove(newId());
      await ours.runtime.remove(newId());
      expect(await ours.runtime.inspect(id)).toBeUndefined();
      expect((await ours.runtime.list()).some((c) => c.sandboxId === id)).toBe(false);
      expect(await ours.runtime.endpoint(id, 3000)).toBeNull();
    });

    it('fails start and exec of a missing sandbox as not_found (not as an unreachable engine), and makes nothing', async () => {
      const missing = newId();
      const started = await ours.runtime.start(missing).then(() => undefined, (err: unknown) => err);
      expect(runtimeFailureOf(started)).toBe('not_found');
      const execed = await ours.runtime.exec(missing, { cmd: ['true'], cwd: '/' }).then(() => undefined, (err: unknown) => err);
      expect(runtimeFailureOf(execed)).toBe('not_found');
      expect(await ours.runtime.inspect(missing)).toBeUndefined();
      expect((await ours.runtime.list()).some((c) => c.sandboxId === missing)).toBe(false);
    });

    it('fails exec in a stopped sandbox as a conflict', async () => {
      const id = await running();
      await ours.runtime.stop(id, 2);
      const execed = await ours.runtime.exec(id, { cmd: ['true'], cwd: '/' }).then(() => undefined, (err: unknown) => err);
      expect(runtimeFailureOf(execed)).toBe('conflict');
    });

    it('inspects and lists only its own instance\'s sandboxes, not a neighbour\'s on the same engine', async () => {
      const mine = await running();
      const theirs = await running(neighbour);
      expect((await neighbour.runtime.inspect(theirs))?.running).toBe(true);
      expect((await neighbour.runtime.list()).some((c) => c.sandboxId === theirs)).toBe(true);
      expect(await ours.runtime.inspect(theirs)).toBeUndefined();
      const listed = await ours.runtime.list();
      expect(listed.some((c) => c.sandboxId === mine)).toBe(true);
      expect(listed.some((c) => c.sandboxId === theirs)).toBe(false);
      expect((await neighbour.runtime.list()).some((c) => c.sandboxId === mine)).toBe(false);
      expect(await ours.runtime.endpoint(theirs, 3000)).toBeNull();
    });

    it("never acts on a neighbour's sandbox named by its id (ids may be chosen by a tenant): stop, remove, start, exec and create leave it running", async () => {
      const theirs = await running(neighbour);
      await ours.runtime.stop(theirs, 0);
      await ours.runtime.remove(theirs);
      await expect(ours.runtime.start(theirs)).rejects.toThrow();
      await expect(ours.runtime.exec(theirs, { cmd: ['true'], cwd: '/home/sandbox' })).rejects.toThrow();
      // A create of that id finds the name taken: refused, and the neighbour's container is not replaced.
      await expect(ours.runtime.create(await ours.spec(theirs))).rejects.toThrow();
      expect((await neighbour.runtime.inspect(theirs))?.running).toBe(true);
      expect(await ours.runtime.inspect(theirs)).toBeUndefined();
    });

    describe('exec', () => {
      let id: string;
      beforeAll(async () => {
        id = await running();
      });

      it('keeps stdout and stderr apart and reports the exit code', async () => {
        expect(await run(id, ['sh', '-c', 'echo to-out; echo to-err >&2; echo more-out; exit 7'])).toEqual({ stdout: 'to-out\nmore-out\n', stderr: 'to-err\n', exitCode: 7 });
        expect(await run(id, ['true'])).toEqual({ stdout: '', stderr: '', exitCode: 0 });
        expect((await run(id, ['sh', '-c', 'exit 255'])).exitCode).toBe(255);
      });

      it('runs the command as the sandbox user, in the given directory, with the given environment', async () => {
        const r = await run(id, ['sh', '-c', 'id -u; pwd; echo "$GREETING"'], { cwd: '/tmp', env: { GREETING: 'hello there' } });
        expect(r).toEqual({ stdout: `${ours.uid}\n/tmp\nhello there\n`, stderr: '', exitCode: 0 });
      });

      it('rejects a working directory that is missing, a file or not enterable as bad_cwd before running anything; output that starts like the marker is the command\'s', async () => {
        await run(id, ['sh', '-c', 'echo x > /tmp/a-file; mkdir -p /tmp/locked && chmod 000 /tmp/locked']);
        for (const cwd of ['/no/such/dir', '/tmp/a-file', '/tmp/locked', '/tmp/with space/missing']) {
          const failed = await run(id, ['sh', '-c', 'touch /tmp/ran-anyway'], { cwd }).then(() => undefined, (err: unknown) => err);
          expect(runtimeFailureOf(failed), cwd).toBe('bad_cwd');
        }
        expect((await run(id, ['sh', '-c', 'test -e /tmp/ran-anyway && echo ran || echo not'])).stdout).toBe('not\n');
        const lookalike = '\x1esandboxd:cwd\x1e then more';
        expect(await run(id, ['printf', '%s', lookalike], { cwd: '/tmp' })).toEqual({ stdout: lookalike, stderr: '', exitCode: 0 });
        expect(await run(id, ['sh', '-c', 'pwd'], { cwd: '/tmp/../tmp' })).toEqual({ stdout: '/tmp\n', stderr: '', exitCode: 0 });
      });

      it('passes 1 MiB of stdin through in order, with back-pressure, and ends it with endInput', async () => {
        const data = Buffer.alloc(1 << 20);
        for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
        const session = await exec(id, ['sha256sum'], { stdin: true });
        const out = record(session);
        for (let at = 0; at < data.length; at += 64 * 1024) await session.write(data.subarray(at, at + 64 * 1024));
        session.endInput();
        expect((await session.done).exitCode).toBe(0);
        expect(out.stdout().split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      });

      it('gives a command without stdin end-of-file at once', async () => {
        expect(await run(id, ['cat'])).toEqual({ stdout: '', stderr: '', exitCode: 0 });
      });

      it('runs a TTY command on a terminal, reports all its output as stdout, and passes a resize to it', async () => {
        const session = await exec(id, ['sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; echo to-err >&2; read line; stty size'], { tty: true, stdin: true });
        const out = record(session);
        await until('the TTY command to start', () => out.stdout().includes('to-err'));
        await session.resize(100, 40);
        await session.write(Buffer.from('go\r'));
        expect((await session.done).exitCode).toBe(0);
        expect(out.stdout()).toContain('on-a-tty');
        expect(out.stdout()).toContain('40 100');
        expect(out.stderr()).toBe('');
      });

      it('kill(TERM) ends the command (exit code 128 + 15) and a child it started in the background, and a later kill is no error', async () => {
        const key = newId();
        const session = await exec(id, ['sh', '-c', `sleep 300 & echo $! > /tmp/child-${key}; wait`]);
        const child = (await until('the child pid', async () => (await run(id, ['cat', `/tmp/child-${key}`])).stdout.trim()));
        expect(await pidGone(id, child)).toBe(false);
        await session.kill('TERM');
        // The shell's convention, passed on to API clients as the command's exit code.
        expect((await session.done).exitCode).toBe(128 + 15);
        await until(`child ${child} to end`, () => pidGone(id, child));
        await session.kill('KILL');
      });

      it('kill reaches every process group of the session: a job of an interactive shell on a TTY dies with it', async () => {
        const key = newId();
        const session = await exec(id, ['sh', '-i'], { tty: true, stdin: true });
        await session.write(Buffer.from(`sleep 300 & echo "$$ $!" > /tmp/jobs-${key}\r`));
        const [shell, job] = (await until('the job pids', async () => (await run(id, ['cat', `/tmp/jobs-${key}`])).stdout.trim())).split(' ');
        // The job has a process group of its own: signalling the shell's group alone would miss it.
        const fields = async (pid: string) => (await run(id, ['sh', '-c', 'sed "s/.*) //" /proc/$0/stat | cut -d" " -f3,4', pid])).stdout.trim().split(' ');
        const [shellGroup, shellSession] = await fields(shell!);
        const [jobGroup, jobSession] = await fields(job!);
        expect(jobGroup).not.toBe(shellGroup);
        expect(jobSession).toBe(shellSession);
        await session.kill('KILL');
        expect((await session.done).exitCode).toBe(128 + 9);
        await until(`job ${job} to end`, () => pidGone(id, job!));
        expect(await pidGone(id, shell!)).toBe(true);
      });
    });

    it('streams start and die of its own sandboxes, nothing of a neighbour\'s, and settles when aborted', async () => {
      const { id } = await created();
      const { id: theirs } = await created(neighbour);
      const seen: RuntimeEvent[] = [];
      const abort = new AbortController();
      const following = ours.runtime.events(abort.signal, (e) => seen.push(e));
      const saw = (sandboxId: string, action: string, from = 0) => seen.slice(from).some((e) => e.sandboxId === sandboxId && e.action === action);
      // The stream gives no sign that it is attached: cycle until one start and die come through.
      await until('a start and a die event', async () => {
        await ours.runtime.start(id);
        await ours.runtime.stop(id, 0);
        return until('the die event of this cycle', () => saw(id, 'die'), 3000).then(() => saw(id, 'start'), () => false);
      }, 30_000);
      await neighbour.runtime.start(theirs);
      await neighbour.runtime.stop(theirs, 0);
      expect(typeof (await neighbour.runtime.inspect(theirs))?.finishedAt).toBe('string');
      // Events come in engine order: once our later start is seen, the neighbour's would have been too.
      const mark = seen.length;
      await ours.runtime.start(id);
      await until('the start after the neighbour\'s cycle', () => saw(id, 'start', mark));
      expect(seen.filter((e) => e.sandboxId === theirs)).toEqual([]);
      abort.abort();
      await expect(following).resolves.toBeUndefined();
    }, 60_000);

    it('reports capacity: host memory with 0 <= available <= total, and with perSandbox the real use of each running sandbox of its own (>= 0), none for stopped or a neighbour\'s', async () => {
      const live = await running();
      const stopped = await running();
      await ours.runtime.stop(stopped, 2);
      const theirs = await running(neighbour);
      const plain = await ours.runtime.capacity();
      expect(plain.memory.totalBytes).toBeGreaterThan(0);
      expect(plain.memory.availableBytes).toBeGreaterThanOrEqual(0);
      expect(plain.memory.availableBytes).toBeLessThanOrEqual(plain.memory.totalBytes);
      expect(plain.perSandbox).toBeUndefined();
      const usage = (await ours.runtime.capacity({ perSandbox: true })).perSandbox!;
      const bytes = usage.get(live);
      expect(typeof bytes).toBe('number');
      expect(Number.isFinite(bytes)).toBe(true);
      expect(bytes).toBeGreaterThanOrEqual(0);
      expect(usage.has(stopped)).toBe(false);
      expect(usage.has(theirs)).toBe(false);
      for (const [sandboxId, used] of usage) {
        expect(Number.isFinite(used), sandboxId).toBe(true);
        expect(used, sandboxId).toBeGreaterThanOrEqual(0);
      }
      expect((await neighbour.runtime.capacity({ perSandbox: true })).perSandbox!.has(theirs)).toBe(true);
    });

    it('gives an endpoint that accepts a real TCP connection from the host to the port asked for, reaching this sandbox; null once stopped', async () => {
      const id = await running();
      const token = newId();
      // A listener of the test's own on a port the spec did not publish, beside the image's server on the first port.
      const server = await exec(id, ['sh', '-c', `mkdir -p /tmp/www && echo ${token} > /tmp/www/token.txt && exec httpd -f -p 4100 -h /tmp/www`]);
      const endpoint = await until('an endpoint for port 4100', () => ours.runtime.endpoint(id, 4100));
      expect(endpoint.port).toBeGreaterThan(0);
      await until('the sandbox\'s own listener to answer through its endpoint', () => httpGet(endpoint.host, endpoint.port, '/token.txt').then((b) => b.trim() === token, () => false));
      const first = await until('an endpoint for port 3000', () => ours.runtime.endpoint(id, 3000));
      await until('a TCP connection to the first port', () => tcpConnects(first.host, first.port));
      await server.kill('TERM');
      await server.done;
      await ours.runtime.stop(id, 2);
      expect(await ours.runtime.endpoint(id, 4100)).toBeNull();
      expect(await ours.runtime.endpoint(id, 3000)).toBeNull();
      expect(await ours.runtime.endpoint(newId(), 3000)).toBeNull();
    });

    it('gives a sandbox with egress "none" an endpoint the host can connect to all the same', async () => {
      const id = await running(ours, 'none');
      const endpoint = await until('an endpoint for port 3000', () => ours.runtime.endpoint(id, 3000));
      await until('a TCP connection to the egress-none sandbox', () => tcpConnects(endpoint.host, endpoint.port));
      await ours.runtime.stop(id, 2);
      expect(await ours.runtime.endpoint(id, 3000)).toBeNull();
    });
  });
}
