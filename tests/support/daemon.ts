import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { egressNames, removeEgressRules } from '../../src/runtime/egress.ts';

export const TEST_IMAGE = 'sandboxed/test:latest';
/** The uid/gid test daemons run sandboxes as: the default SANDBOXD_SANDBOX_UID/GID (src/config.ts). */
export const SANDBOX_UID = 61000;
export const ROOT = resolve(import.meta.dirname, '../..');
export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

export interface StartOptions {
  env?: Record<string, string>;
  runtime?: 'node' | 'deno';
  /** Reuse the data dir, instance and network of an earlier daemon (a restart). */
  reuse?: Daemon;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** The runtime daemons run on unless a test asks for one: SANDBOXD_TEST_RUNTIME=deno runs the whole suite on Deno. */
export function defaultRuntime(): 'node' | 'deno' {
  const r = process.env.SANDBOXD_TEST_RUNTIME ?? 'node';
  if (r !== 'node' && r !== 'deno') throw new Error(`SANDBOXD_TEST_RUNTIME: expected node or deno, got '${r}'`);
  return r;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

/** A real sandboxd process with its own data dir, API port, instance label and network. */
export class Daemon {
  proc!: ChildProcess;
  url = '';
  port = 0;
  /** The preview gateway's port (HTTP_PORT). */
  gatewayPort = 0;
  output = '';
  exited: Promise<number | null> = Promise.resolve(null);
  readonly dataDir: string;
  readonly instance: string;
  readonly network: string;
  readonly env: Record<string, string>;
  readonly runtime: 'node' | 'deno';

  constructor(opts: StartOptions = {}) {
    const tag = randomBytes(4).toString('hex');
    this.dataDir = opts.reuse?.dataDir ?? mkdtempSync(join(tmpdir(), 'sandboxd-test-'));
    this.instance = opts.reuse?.instance ?? `t${tag}`;
    this.network = opts.reuse?.network ?? `sbx-test-${tag}`;
    this.runtime = opts.runtime ?? opts.reuse?.runtime ?? defaultRuntime();
    this.env = { ...opts.reuse?.env, ...opts.env };
    this.gatewayPort = opts.reuse?.gatewayPort ?? 0;
  }

  /** Spawns the daemon and waits until /healthz answers (or the process dies, which fails with its output). */
  async start(port?: number): Promise<this> {
    this.port = port ?? (this.port || (await freePort()));
    this.gatewayPort ||= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      SANDBOXED_DATA_DIR: this.dataDir,
      SANDBOXED_API_BIND: `127.0.0.1:${this.port}`,
      HTTP_PORT: String(this.gatewayPort),
      SANDBOXD_IMAGE: TEST_IMAGE,
      SANDBOXD_INSTANCE: this.instance,
      SANDBOXD_NETWORK: this.network,
      SANDBOXD_STOP_GRACE_S: '2',
      SANDBOXD_DEFAULT_MEMORY_MB: '256',
      // Workspaces reserve their limit on the disk: 10 GiB each (the default) times every sandbox the suite
      // has alive at once would not fit this machine. The few tests that write hundreds of MiB fit in 1 GiB.
      SANDBOXD_DEFAULT_DISK_MB: '1024',
      SANDBOXD_LOG_LEVEL: 'info',
      ...this.env,
    };
    const bin = join(ROOT, 'node_modules/.bin', this.runtime);
    const args = this.runtime === 'deno'
      ? ['run', '--allow-all', 'src/main.ts']
      : ['--disable-warning=ExperimentalWarning', 'src/main.ts'];
    this.output = '';
    this.proc = spawn(bin, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((res) => this.proc.once('exit', (code) => res(code)));
    let dead = false;
    void this.exited.then(() => (dead = true));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (dead) {
        // A failed boot may have mounted the workspaces root already; a test whose start failed never cleans up.
        unmountUnder(this.dataDir);
        throw new Error(`sandboxd exited during start:\n${this.output}`);
      }
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return this;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`sandboxd did not answer /healthz within 30 s:\n${this.output}`);
  }

  /** A JSON request to the API; `body` objects are sent as JSON, strings as they are. */
  async api<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const r = await fetch(`${this.url}${path}`, init);
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (healthz)
    }
    return { status: r.status, headers: r.headers, body: parsed as T, text };
  }

  /** A request to the preview gateway with a chosen Host header (fetch cannot set Host). */
  gateway(host: string, path = '/', opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.gatewayPort, path, method: opts.method ?? 'GET', headers: { host, ...opts.headers } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  /** Ends the process (SIGKILL when `hard`), waiting for it to exit. */
  async stop(hard = false): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await this.exited;
  }

  /** Containers of this instance, as the engine lists them. */
  async containers(): Promise<Docker.ContainerInfo[]> {
    return docker.listContainers({ all: true, filters: JSON.stringify({ label: [`sandboxed.instance=${this.instance}`] }) });
  }

  /** Stops the process and removes every container, the network and the data dir it made. */
  async cleanup(): Promise<void> {
    await this.stop(true).catch(() => undefined);
    // A container busy with exec streams can refuse its first removal: look again, a few times.
    for (let attempt = 0; attempt < 5; attempt++) {
      const left = await this.containers().catch(() => []);
      if (!left.length) break;
      for (const c of left) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      if (attempt) await new Promise((r) => setTimeout(r, 1000));
    }
    await docker.getNetwork(this.network).remove().catch(() => undefined);
    // The internal network of egress "none" sandboxes, and the firewall chain both networks jump to.
    await docker.getNetwork(egressNames(this.network).noneNetwork).remove().catch(() => undefined);
    await removeEgressRules(this.network);
    unmountUnder(this.dataDir);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Detaches every mount under `dir` (the daemon's nosuid,nodev workspaces mount and anything on it), deepest first. */
export function unmountUnder(dir: string): void {
  if (!existsSync(dir)) return;
  dir = realpathSync(dir);
  const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      execFileSync('umount', ['-l', p], { stdio: 'ignore' });
    } catch {
      // already gone (a bind stacked twice unmounts with the first)
    }
  }
}

/** Starts a daemon for a test file; pair with `cleanup()` in afterAll. */
export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  return new Daemon(opts).start();
}

/** Polls `fn` until it returns a truthy value or `ms` passes; answers the last value. */
export async function eventually<T>(fn: () => Promise<T>, ms = 5000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await fn();
  while (!last && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

/**
 * Creates a sandbox and answers its id. Throws with the daemon's answer unless it is 201, so a test fails at
 * the create that went wrong, not later on an undefined id.
 */
export async function createSandbox(d: Daemon, body: Record<string, unknown> = {}): Promise<string> {
  const r = await d.api<{ id?: unknown }>('POST', '/v1/sandboxes', body);
  if (r.status !== 201 || typeof r.body?.id !== 'string') throw new Error(`creating a sandbox answered ${r.status}: ${r.text.slice(0, 500)}`);
  return r.body.id;
}

/** Runs a command inside a sandbox's container as the sandbox user, answering exit code and output. */
export async function execIn(sandboxId: string, cmd: string[]): Promise<{ code: number; output: string }> {
  const exec = await docker.getContainer(`s-${sandboxId}`).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((res, rej) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', res);
    stream.on('error', rej);
  });
  const raw = Buffer.concat(chunks);
  // Demultiplex Docker's 8-byte framed stream.
  let output = '';
  for (let i = 0; i + 8 <= raw.length;) {
    const len = raw.readUInt32BE(i + 4);
    output += raw.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, output };
}
