import type { ExecSignal, ExecSpec } from '../model/exec.ts';
import type { LiveState } from '../model/sandbox.ts';
import type { WorkspaceMount } from '../model/workspace.ts';

/** What the lifecycle needs to create one sandbox container. */
export interface SandboxSpec {
  sandboxId: string;
  image: string;
  env: Record<string, string>;
  /** Preview ports: the first is the dev server's (PORT), all of them are in SANDBOXED_PORTS. */
  ports: number[];
  /** The sandbox's home, as its workspace store hands it over. */
  workspace: WorkspaceMount;
  memoryMb: number;
  cpus: number;
  pids: number;
  /** `none`: the sandbox can answer the gateway and reach nothing at all. */
  egress?: 'internet' | 'none';
}

/** A failed `prepare`: `engine` (the engine is not usable) or `isolation` (the egress rules cannot be put in place). */
export class RuntimeSetupError extends Error {
  readonly step: 'engine' | 'isolation';
  constructor(step: 'engine' | 'isolation', cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.step = step;
  }
}

/** A host and port to open TCP connections to. */
export interface Endpoint {
  host: string;
  port: number;
}

/** The live state of one sandbox container, as the runtime reports it. */
export interface ContainerState extends LiveState {
  containerId: string;
  sandboxId: string;
}

/** A running command inside a sandbox. */
export interface ExecSession {
  /** Called with each chunk of output (a TTY session reports everything as stdout). */
  onOutput(cb: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): void;
  /** Settles once the stream has taken the bytes (its buffer drained), so a caller can hold back more. */
  write(data: Buffer): Promise<void>;
  endInput(): void;
  pause(): void;
  resume(): void;
  resize(cols: number, rows: number): Promise<void>;
  /** Signals the command's whole process group. */
  kill(signal: ExecSignal): Promise<void>;
  /** Settles when the command has ended, with its exit code. */
  readonly done: Promise<{ exitCode: number }>;
}

/** What the backend has room for now: the pressure reaper's and the admission gate's only reading of the host. */
export interface Capacity {
  /** Memory new sandboxes can take: the total, and what is available now (reclaimable page cache counted as available). */
  memory: { totalBytes: number; availableBytes: number };
  /** Real memory in use (bytes, page cache excluded) of each running sandbox of this instance; only when asked for. */
  perSandbox?: Map<string, number>;
}

/** A change the runtime noticed on one of our containers. */
export interface RuntimeEvent {
  sandboxId: string;
  action: string;
}

/**
 * Every container operation goes through this boundary. Docker implements it today; another backend
 * (Kubernetes pods) can implement it without touching the API, the store or the gateway.
 */
export interface Runtime {
  /** Throws when the engine cannot be reached (a RuntimeError `unreachable`). Every method fails typed (RuntimeError) where it can. */
  ping(): Promise<void>;
  /**
   * Everything the backend needs before the first sandbox: the engine answers, the sandbox network exists
   * (refusing one that lets sandboxes talk to each other), and with `isolation` the egress rules are in place
   * and read back as written. Throws a RuntimeSetupError naming the step that failed.
   */
  prepare(opts: { isolation: boolean }): Promise<void>;
  /**
   * Puts the egress isolation in place or back (sandboxes reach the public internet and nothing near the host:
   * not the host, its LAN, link-local, other sandboxes); answers what was missing. Docker: needs root/CAP_NET_ADMIN.
   */
  repairIsolation(): Promise<string[]>;
  /** What of the egress isolation is missing or out of place now; empty when it is all there. */
  isolationProblems(): Promise<string[]>;
  imageExists(image: string): Promise<boolean>;
  /** Creates (does not start) the hardened container for a sandbox; answers its container id. */
  create(spec: SandboxSpec): Promise<string>;
  start(sandboxId: string): Promise<void>;
  /** Stops with a grace period; a container that is already stopped or missing is not an error. */
  stop(sandboxId: string, graceS: number): Promise<void>;
  /** Removes the container with force; a missing one is not an error. */
  remove(sandboxId: string): Promise<void>;
  /** Removes the containers of these sandboxes that were made for another sandbox uid (an upgrade from 1000); answers their ids. */
  removeForeignUser(sandboxIds: ReadonlySet<string>): Promise<string[]>;
  inspect(sandboxId: string): Promise<ContainerState | undefined>;
  /** Where the gateway and health checks connect to one of the sandbox's ports while it runs; null when it does not. */
  endpoint(sandboxId: string, port: number): Promise<Endpoint | null>;
  /** Every container of this daemon instance. */
  list(): Promise<ContainerState[]>;
  /** Streams changes to our containers until the signal aborts; rejects when the stream breaks. */
  events(signal: AbortSignal, onEvent: (e: RuntimeEvent) => void): Promise<void>;
  /**
   * Memory available for new work; with `perSandbox`, also each running sandbox's real use (it costs one
   * reading per sandbox, so only the emergency band asks). Docker: the host's /proc/meminfo and the engine's stats.
   */
  capacity(opts?: { perSandbox?: boolean }): Promise<Capacity>;
  /**
   * Starts a command in a running sandbox as the sandbox user (SANDBOXD_SANDBOX_UID), in `spec.cwd`. Settles once
   * the command is about to run: a `cwd` that cannot be entered rejects (`bad_cwd`) before any output, a missing
   * sandbox `not_found`, a stopped one `conflict`.
   */
  exec(sandboxId: string, spec: ExecSpec): Promise<ExecSession>;
}

/** Labels on everything the daemon creates; uninstall and the reconciler select by them. */
export const LABEL_MANAGED = 'sandboxed.managed';
export const LABEL_ID = 'sandboxed.id';
export const LABEL_INSTANCE = 'sandboxed.instance';

/** Container and host name of a sandbox. */
export function containerName(sandboxId: string): string {
  return `s-${sandboxId}`;
}

/**
 * Why a runtime call failed, in words every backend shares: the engine cannot be reached at all, the sandbox
 * (or what the call names) is not there, the call conflicts with its state (an exec into a stopped sandbox, a
 * second create), or the working directory asked for cannot be entered. Anything else is the backend's own Error.
 */
const RUNTIME_FAILURES = ['unreachable', 'not_found', 'conflict', 'bad_cwd'] as const;
export type RuntimeFailure = (typeof RUNTIME_FAILURES)[number];

/** A runtime call that failed for a reason its caller acts on (see RuntimeFailure). */
export class RuntimeError extends Error {
  readonly failure: RuntimeFailure;
  constructor(failure: RuntimeFailure, message: string) {
    // The kind also rides in `cause`: a worker thread's error reaches the main thread as a structured clone,
    // which keeps an Error's message and cause but not its class or own fields.
    super(message, { cause: { runtimeFailure: failure } });
    this.name = 'RuntimeError';
    this.failure = failure;
  }
}

/** The kind of a failed runtime call, also for one that failed in a worker thread; undefined for any other error. */
export function runtimeFailureOf(err: unknown): RuntimeFailure | undefined {
  if (err instanceof RuntimeError) return err.failure;
  const cause = (err as { cause?: unknown } | null)?.cause as { runtimeFailure?: unknown } | undefined;
  const kind = typeof cause === 'object' && cause !== null ? cause.runtimeFailure : undefined;
  return RUNTIME_FAILURES.find((f) => f === kind);
}
