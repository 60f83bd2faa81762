import type { ExecSignal, ExecSpec } from '../model/exec.ts';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import type { EgressAllow } from '../config-egress.ts';
import { withDeadline } from '../deadline.ts';
import { BRIDGE_PREFIX, egressFirewallFor, egressNames, type EgressFirewall } from './egress.ts';
import { RECORD_PID_AND_EXEC, SIGNAL_RECORDED } from './sandbox-scripts.ts';
import { DockerDemuxer } from './demux.ts';
import { StartMarker } from './start-marker.ts';
import {
  LABEL_ID, LABEL_INSTANCE, LABEL_MANAGED, containerName,
  RuntimeError, RuntimeSetupError, type Capacity, type ContainerState, type Endpoint, type ExecSession, type Runtime, type RuntimeEvent, type SandboxSpec,
} from './runtime.ts';

/** Settings the Docker runtime needs, taken from the daemon's config. */
export interface DockerRuntimeOptions {
  socketPath?: string;
  instance: string;
  network: string;
  nofile: number;
  tmpfsMb: number;
  /** The uid/gid sandboxes run as (SANDBOXD_SANDBOX_UID/GID): containers, execs and tmpfs mounts. */
  uid: number;
  gid: number;
  /** SANDBOXD_EGRESS_ALLOW: openings ahead of the egress drops. */
  egressAllow?: EgressAllow[];
  /** The host memory figures capacity() reads (SANDBOXD_MEMINFO_PATH; tests point it at a file of their own). */
  meminfoPath?: string;
}

const ICC_OPTION = 'com.docker.network.bridge.enable_icc';
/** How long an exec's wrapper may take to enter its directory and say so; past it the exec fails (and its slot is free again). */
const EXEC_START_TIMEOUT_MS = 30_000;
const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
/** The Runtime over the Docker Engine API (never the docker CLI). */
export class DockerRuntime implements Runtime {
  private docker: Docker;

  private opts: DockerRuntimeOptions;

  constructor(opts: DockerRuntimeOptions) {
    this.opts = opts;
    this.docker = new Docker({ socketPath: opts.socketPath ?? '/var/run/docker.sock' });
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async prepare(opts: { isolation: boolean }): Promise<void> {
    try {
      await this.ping();
      await this.ensureNetwork();
    } catch (err) {
      throw new RuntimeSetupError('engine', err);
    }
    if (!opts.isolation) return;
    try {
      // Read back what was written: rules the kernel prints differently would otherwise look missing forever.
      // Docker deletes and re-inserts its own jumps whenever any network is made (another instance's too), so
      // a gap seen in passing is repaired and read again a few times before it counts.
      let left: string[] = [];
      for (let attempt = 0; attempt < 5; attempt++) {
        await this.repairIsolation();
        left = await this.isolationProblems();
        if (!left.length) return;
        await new Promise((r) => setTimeout(r, 300));
      }
      throw new Error(`the egress rules do not read back as written: ${left.join('; ')}`);
    } catch (err) {
      throw err instanceof RuntimeSetupError ? err : new RuntimeSetupError('isolation', err);
    }
  }

  /**
   * Creates the default sandbox network if missing; refuses one that lets sandboxes talk to each other. The
   * internal one of `egress: none` sandboxes is made at their first create (each network takes one of the
   * engine's few address pools); the firewall names its bridge from the start.
   */
  private async ensureNetwork(): Promise<void> {
    this.bridge = await this.ensureOneNetwork(this.opts.network, egressNames(this.opts.network).internetBridge, false);
  }

  /** The internal network (no route out) of `egress: none` sandboxes, made when first needed. */
  private async ensureNoneNetwork(): Promise<string> {
    const { noneNetwork, noneBridge } = egressNames(this.opts.network);
    const bridge = await this.ensureOneNetwork(noneNetwork, noneBridge, true);
    if (bridge !== noneBridge) {
      throw new Error(`Docker network '${noneNetwork}' was not created by sandboxd (its bridge is not ${noneBridge}), so egress "none" cannot be enforced; remove it (docker network rm ${noneNetwork})`);
    }
    return noneNetwork;
  }

  private async ensureOneNetwork(network: string, bridge: string, internal: boolean): Promise<string | undefined> {
    let info: Docker.NetworkInspectInfo | undefined;
    try {
      info = await this.docker.getNetwork(network).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (!info) {
      try {
        await this.docker.createNetwork({
          Name: network,
          Driver: 'bridge',
          CheckDuplicate: true,
          Internal: internal,
          // No IPv6 on the network: Docker then turns IPv6 off inside each container (the ip6tables rules stay as a second wall).
          EnableIPv6: false,
          Options: { [ICC_OPTION]: 'false', [BRIDGE_NAME_OPTION]: bridge },
          Labels: { [LABEL_MANAGED]: 'true', [LABEL_INSTANCE]: this.opts.instance },
        });
      } catch (err) {
        // Another daemon sharing the engine may have created it between our inspect and create: the engine
        // answers 409 (same name) or, when the names raced past its check, 403 (same bridge name). Either way
        // the network now exists, and it is checked below like any other; if it does not, the error stands.
        const raced = await this.docker.getNetwork(network).inspect().catch(() => undefined);
        if (!raced) throw err;
      }
      info = (await this.docker.getNetwork(network).inspect()) as Docker.NetworkInspectInfo;
    }
    if (info.Driver !== 'bridge' || info.Options?.[ICC_OPTION] !== 'false') {
      throw new Error(`Docker network '${network}' exists but lets containers reach each other (${ICC_OPTION} is not false); remove it (docker network rm ${network}) or set SANDBOXD_NETWORK to another name`);
    }
    if (info.Internal !== internal) {
      throw new Error(`Docker network '${network}' exists but is ${internal ? 'not ' : ''}internal; remove it (docker network rm ${network}) and start again`);
    }
    return info.Options?.[BRIDGE_NAME_OPTION];
  }

  private bridge: string | undefined;

  private firewall: EgressFirewall | undefined;

  /** The egress firewall of our networks; refuses networks whose bridges are not the names the rules match. */
  private egress(): EgressFirewall {
    if (this.bridge !== egressNames(this.opts.network).internetBridge) {
      throw new Error(`Docker network '${this.opts.network}' was not created by sandboxd (its bridge is not named ${BRIDGE_PREFIX}*), so the host cannot be shielded from it; remove the network (docker network rm ${this.opts.network}) and start again`);
    }
    this.firewall ??= egressFirewallFor(this.opts.network, this.opts.egressAllow ?? []);
    return this.firewall;
  }

  async repairIsolation(): Promise<string[]> {
    if (this.bridge === undefined) await this.ensureNetwork();
    return this.egress().repair();
  }

  async isolationProblems(): Promise<string[]> {
    if (this.bridge === undefined) await this.ensureNetwork();
    return this.egress().problems();
  }

  async imageExists(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async create(spec: SandboxSpec): Promise<string> {
    const name = containerName(spec.sandboxId);
    const memory = spec.memoryMb * 1024 * 1024;
    const options: Docker.ContainerCreateOptions = {
      name,
      Hostname: name,
      Image: spec.image,
      User: `${this.opts.uid}:${this.opts.gid}`,
      WorkingDir: '/home/sandbox',
      // The sandbox's own env comes after ours, so a PORT it sets wins.
      Env: [
        `PORT=${spec.ports[0] ?? 3000}`, `SANDBOXED_PORTS=${spec.ports.join(',')}`,
        ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), 'HOME=/home/sandbox',
      ],
      Labels: { [LABEL_MANAGED]: 'true', [LABEL_ID]: spec.sandboxId, [LABEL_INSTANCE]: this.opts.instance },
      HostConfig: {
        Init: true,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        // uid/gid as well as mode: the engine forgets the mode when a stopped container starts again
        // (docker/for-linux#138), and the sandbox user must still be able to write there after a wake.
        Tmpfs: {
          '/tmp': `rw,exec,nosuid,nodev,size=${this.opts.tmpfsMb}m,mode=1777,uid=${this.opts.uid},gid=${this.opts.gid}`,
          '/var/tmp': `rw,exec,nosuid,nodev,size=${this.opts.tmpfsMb}m,mode=1777,uid=${this.opts.uid},gid=${this.opts.gid}`,
        },
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: spec.pids,
        NanoCpus: Math.round(spec.cpus * 1e9),
        Ulimits: [{ Name: 'nofile', Soft: this.opts.nofile, Hard: this.opts.nofile }],
        Binds: [`${spec.workspace.path}:/home/sandbox`],
        NetworkMode: spec.egress === 'none' ? await this.ensureNoneNetwork() : this.opts.network,
        RestartPolicy: { Name: 'no' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
      },
    };
    const container = await this.docker.createContainer(options);
    return container.id;
  }

  /**
   * The sandbox's container, only when it is this instance's. Container names are global to the engine: a
   * tenant of another instance on it could otherwise pick one of ours as its sandbox id (ids may be chosen)
   * and have that instance stop, start, exec into or remove our container.
   */
  private async own(sandboxId: string): Promise<Docker.Container | undefined> {
    const container = this.docker.getContainer(containerName(sandboxId));
    try {
      const info = await container.inspect();
      return info.Config.Labels?.[LABEL_INSTANCE] === this.opts.instance ? container : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** `own`, or an error naming why there is nothing of ours to act on. */
  private async mustOwn(sandboxId: string): Promise<Docker.Container> {
    const container = await this.own(sandboxId);
    if (!container) throw new RuntimeError('not_found', `no container of this sandboxd instance for sandbox ${sandboxId}`);
    return container;
  }

  async start(sandboxId: string): Promise<void> {
    const container = await this.mustOwn(sandboxId);
    try {
      await container.start();
    } catch (err) {
      if (statusOf(err) !== 304) throw err; // already running
    }
  }

  async stop(sandboxId: string, graceS: number): Promise<void> {
    // Nothing of ours (missing, or another instance's): nothing to stop.
    const container = await this.own(sandboxId);
    if (!container) return;
    try {
      await container.stop({ t: graceS });
    } catch (err) {
      const status = statusOf(err);
      if (status !== 304 && status !== 404) throw err;
    }
  }

  async removeForeignUser(sandboxIds: ReadonlySet<string>): Promise<string[]> {
    const user = `${this.opts.uid}:${this.opts.gid}`;
    const summaries = await this.docker.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.opts.instance}`] }),
    });
    const removed: string[] = [];
    for (const s of summaries) {
      const info = await this.docker.getContainer(s.Id).inspect().catch(() => undefined);
      const id = info?.Config.Labels?.[LABEL_ID];
      // A container's user is fixed at create: one made for the old uid could not write its converted home.
      // Only sandboxes with a row: a container without one is the reconciler's to report (and keep) as an orphan.
      if (!info || !id || !sandboxIds.has(id) || info.Config.User === user) continue;
      await this.remove(id);
      removed.push(id);
    }
    return removed;
  }

  async remove(sandboxId: string): Promise<void> {
    // Another instance's container of that name stays; a create over it then fails on the name, as it must.
    const container = await this.own(sandboxId);
    if (!container) return;
    try {
      await container.remove({ force: true, v: true });
    } catch (err) {
      const status = statusOf(err);
      // 409: removal already in progress, which ends in the same place.
      if (status !== 404 && status !== 409) throw err;
    }
  }

  async inspect(sandboxId: string): Promise<ContainerState | undefined> {
    try {
      const info = await this.docker.getContainer(containerName(sandboxId)).inspect();
      if (info.Config.Labels?.[LABEL_INSTANCE] !== this.opts.instance) return undefined;
      return this.toState(info);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async endpoint(sandboxId: string, port: number): Promise<Endpoint | null> {
    // Ports are not published: the container's own address on the sandbox network, the port unchanged.
    const state = await this.inspect(sandboxId);
    return state?.running && state.ip ? { host: state.ip, port } : null;
  }

  async list(): Promise<ContainerState[]> {
    const summaries = await this.docker.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.opts.instance}`] }),
    });
    const states = await Promise.all(summaries.map(async (s) => {
      try {
        return this.toState(await this.docker.getContainer(s.Id).inspect());
      } catch (err) {
        if (statusOf(err) === 404) return undefined; // removed between list and inspect
        throw err;
      }
    }));
    return states.filter((s): s is ContainerState => s !== undefined);
  }

  async events(signal: AbortSignal, onEvent: (e: RuntimeEvent) => void): Promise<void> {
    const stream = (await this.docker.getEvents({
      filters: JSON.stringify({
        type: ['container'],
        label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.opts.instance}`],
        event: ['start', 'die', 'oom', 'stop', 'destroy'],
      }),
    })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      const abort = () => (stream.destroy(), resolve());
      signal.addEventListener('abort', abort, { once: true });
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (!line) continue;
          let ev: { Action?: string; status?: string; Actor?: { Attributes?: Record<string, string> } };
          try {
            ev = JSON.parse(line);
          } catch {
            continue; // not an event; the periodic pass covers whatever it was about
          }
          const sandboxId = ev?.Actor?.Attributes?.[LABEL_ID];
          if (typeof sandboxId === 'string') onEvent({ sandboxId, action: ev.Action ?? ev.status ?? 'unknown' });
        }
      });
      stream.on('error', (err: Error) => (signal.removeEventListener('abort', abort), reject(err)));
      stream.on('end', () => {
        signal.removeEventListener('abort', abort);
        if (signal.aborted) resolve();
        else reject(new Error('the Docker event stream ended'));
      });
    });
  }

  async capacity(opts: { perSandbox?: boolean } = {}): Promise<Capacity> {
    // The engine runs its containers on this host: its memory is what they share (a remote engine is not supported).
    const memory = readMeminfo(await readFile(this.opts.meminfoPath ?? '/proc/meminfo', 'utf8'));
    return opts.perSandbox ? { memory, perSandbox: await this.memoryUsage() } : { memory };
  }

  private async memoryUsage(): Promise<Map<string, number>> {
    const running = (await this.list()).filter((c) => c.running);
    const usage = new Map<string, number>();
    await Promise.all(running.map(async (c) => {
      try {
        const s = (await this.docker.getContainer(c.containerId).stats({ stream: false, 'one-shot': true } as { stream: false })) as Docker.ContainerStats;
        usage.set(c.sandboxId, realMemoryUse(s.memory_stats));
      } catch {
        // stopped between list and stats
      }
    }));
    return usage;
  }

  async exec(sandboxId: string, spec: ExecSpec): Promise<ExecSession> {
    const container = await this.mustOwn(sandboxId);
    const execId = randomBytes(8).toString('hex');
    // The wrapper records the command's in-container pid (Docker makes each exec a session leader) so that
    // kill() can signal the whole session from a second exec, whatever the command spawned; it also enters
    // the working directory, and says whether it could, before anything of the command's is printed.
    const exec = await container.exec({
      Cmd: ['/bin/sh', '-c', RECORD_PID_AND_EXEC, execId, spec.cwd, ...spec.cmd],
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      User: `${this.opts.uid}:${this.opts.gid}`,
      Tty: spec.tty ?? false,
      AttachStdin: spec.stdin ?? false,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = (await exec.start({ hijack: true, stdin: spec.stdin ?? false, Tty: spec.tty ?? false })) as Duplex;
    // Output that comes before the caller's onOutput (the marker's chunk can carry the command's first bytes) is held.
    let listener: ((stream: 'stdout' | 'stderr', chunk: Buffer) => void) | undefined;
    const early: [stream: 'stdout' | 'stderr', chunk: Buffer][] = [];
    // A consumer that throws on some output ends this command's stream, never the thread that reads it.
    const deliver = (kind: 'stdout' | 'stderr', chunk: Buffer) => {
      if (!listener) return void early.push([kind, chunk]);
      try {
        listener(kind, chunk);
      } catch (err) {
        stream.destroy(err as Error);
      }
    };
    const marker = new StartMarker();
    let markerRead!: (state: 'started' | 'bad_cwd') => void;
    const started = new Promise<'started' | 'bad_cwd'>((resolve) => (markerRead = resolve));
    const take = (kind: 'stdout' | 'stderr', chunk: Buffer) => {
      if (kind === 'stderr') return deliver(kind, chunk);
      const { state, rest } = marker.feed(chunk);
      if (state === 'pending') return;
      markerRead(state);
      if (rest.length) deliver(kind, rest);
    };
    const demux = new DockerDemuxer(take);
    stream.on('data', (chunk: Buffer) => (spec.tty ? take('stdout', chunk) : demux.push(chunk)));
    const done = new Promise<{ exitCode: number }>((resolve, reject) => {
      let settled = false;
      const finish = async () => {
        // A stream that ended before the marker (the wrapper could not even record its pid) ran nothing: its exit code says so.
        markerRead('started');
        if (settled) return;
        settled = true;
        // The attach stream can close a moment before the engine records the exit code.
        for (let i = 0; i < 50; i++) {
          const info = await exec.inspect().catch(() => undefined);
          if (info && !info.Running) return resolve({ exitCode: info.ExitCode ?? -1 });
          await new Promise((r) => setTimeout(r, 20));
        }
        reject(new Error('the command\'s stream ended but the engine still reports it running'));
      };
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', (err: Error) => (markerRead('started'), settled ? undefined : ((settled = true), reject(err))));
    });
    // The callers' own timers (timeouts, hang-ups) start once this answers: the wait for the marker has its own limit.
    const outcome = await withDeadline(started, EXEC_START_TIMEOUT_MS, () => new Error(`the command did not start within ${EXEC_START_TIMEOUT_MS / 1000} s (the sandbox is frozen or overloaded)`))
      .catch((err: unknown) => err as Error);
    if (outcome !== 'started') {
      done.catch(() => undefined);
      stream.destroy();
      throw outcome === 'bad_cwd' ? new RuntimeError('bad_cwd', `the working directory ${spec.cwd} does not exist in the sandbox or cannot be entered`) : outcome;
    }
    const signal = async (sig: ExecSignal) => {
      const killer = await container.exec({
        Cmd: ['/bin/sh', '-c', SIGNAL_RECORDED, 'signal', execId, sig],
        User: `${this.opts.uid}:${this.opts.gid}`, AttachStdout: false, AttachStderr: false,
      });
      await killer.start({ Detach: true });
    };
    return {
      onOutput: (cb) => {
        listener = cb;
        for (const [kind, chunk] of early.splice(0)) deliver(kind, chunk);
      },
      write: (data) => writeThrough(stream, data),
      endInput: () => stream.end(),
      pause: () => void stream.pause(),
      resume: () => void stream.resume(),
      resize: async (cols, rows) => void (await exec.resize({ w: cols, h: rows })),
      kill: signal,
      done,
    };
  }

  private toState(info: Docker.ContainerInspectInfo): ContainerState {
    const net = info.NetworkSettings.Networks?.[this.opts.network] ?? info.NetworkSettings.Networks?.[egressNames(this.opts.network).noneNetwork];
    return {
      containerId: info.Id,
      sandboxId: info.Config.Labels?.[LABEL_ID] ?? '',
      state: info.State.Status,
      running: info.State.Running,
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      startedAt: zeroTimeToNull(info.State.StartedAt),
      finishedAt: zeroTimeToNull(info.State.FinishedAt),
      ip: net?.IPAddress || null,
    };
  }
}

/**
 * Every Runtime method: each is wrapped below so that what it throws reaches callers typed. A method added to
 * Runtime and missing here does not compile.
 */
const RUNTIME_METHODS = {
  ping: true, prepare: true, repairIsolation: true, isolationProblems: true, imageExists: true, create: true, start: true,
  stop: true, remove: true, removeForeignUser: true, inspect: true, endpoint: true, list: true, events: true, capacity: true,
  exec: true,
} satisfies Record<keyof Runtime, true>;

for (const name of Object.keys(RUNTIME_METHODS) as (keyof Runtime)[]) {
  const impl = DockerRuntime.prototype[name] as (...args: unknown[]) => Promise<unknown>;
  Object.defineProperty(DockerRuntime.prototype, name, {
    value: function (this: DockerRuntime, ...args: unknown[]) {
      return impl.apply(this, args).catch((err: unknown) => {
        throw typedFailure(err);
      });
    },
    writable: true, configurable: true,
  });
}

/**
 * The engine's failures in the Runtime's words (RuntimeError): a refused or missing socket is `unreachable`,
 * a 404 `not_found`, a 409 `conflict` (Docker answers an exec into a stopped container with it). Anything else,
 * and errors that are typed already, pass unchanged.
 */
export function typedFailure(err: unknown): unknown {
  if (err instanceof RuntimeError || err instanceof RuntimeSetupError) return err;
  const e = err as { code?: unknown; syscall?: unknown } | null;
  // Only failures to connect: a reset mid-request can as well be a client's, and is not the engine's absence.
  if (typeof e === 'object' && e !== null && ['ENOENT', 'ECONNREFUSED'].includes(String(e.code)) && e.syscall === 'connect') {
    return new RuntimeError('unreachable', `the container engine is not answering (${String(e.code)} on its socket)`);
  }
  const status = statusOf(err);
  const text = err instanceof Error ? err.message : String(err);
  if (status === 404) return new RuntimeError('not_found', text);
  if (status === 409) return new RuntimeError('conflict', text);
  return err;
}

/** Writes to an exec's stdin and settles when the stream can take more (or is gone): stdin back-pressure. */
function writeThrough(stream: Duplex, data: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  if (stream.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => (stream.off('drain', done), stream.off('close', done), resolve());
    stream.on('drain', done);
    stream.on('close', done);
  });
}

function zeroTimeToNull(t: string | undefined): string | null {
  return !t || t.startsWith('0001-') ? null : t;
}

/** The HTTP status dockerode attached to an engine error, if any. */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number((err as { statusCode: unknown }).statusCode) : undefined;
}

/** Host memory in bytes, from a /proc/meminfo text. */
export function readMeminfo(meminfo: string): { totalBytes: number; availableBytes: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(meminfo)?.[1] ?? NaN);
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (!(total > 0) || !(available >= 0)) throw new Error('meminfo has no MemTotal/MemAvailable');
  return { totalBytes: total * 1024, availableBytes: available * 1024 };
}

/** A byte count from the engine: a finite number from 0, else undefined. */
const byteCount = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * Real memory use in bytes from one Docker stats `memory_stats`: usage less the inactive page cache, which the
 * kernel reclaims first, as `docker stats` counts it. cgroup v1 names that figure `total_inactive_file` (its
 * `inactive_file` is the cgroup alone, without children), cgroup v2 `inactive_file`. v1's `cache` is not used:
 * it includes tmpfs and shared memory, which cannot be reclaimed, so a /tmp filler would look small. A missing
 * or malformed figure counts as nothing: the answer is never negative and never NaN.
 */
export function realMemoryUse(memoryStats: unknown): number {
  const m = (typeof memoryStats === 'object' && memoryStats !== null ? memoryStats : {}) as { usage?: unknown; stats?: unknown };
  const usage = byteCount(m.usage) ?? 0;
  const stats = (typeof m.stats === 'object' && m.stats !== null ? m.stats : {}) as Record<string, unknown>;
  const inactive = byteCount(stats.total_inactive_file) ?? byteCount(stats.inactive_file) ?? 0;
  return Math.max(0, usage - inactive);
}
