import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseTokens, QUOTA_MAX, quotaValue, readTokensFile } from './config-tokens.ts';
import { parseEgressAllow, type EgressAllow } from './config-egress.ts';

/** Per-tenant limits (src/sandboxes/quotas.ts); null is unlimited. */
export interface Quotas {
  sandboxes: number | null;
  running: number | null;
  memoryMb: number | null;
  diskMb: number | null;
  alwaysOn: number | null;
}

/** One API token: the tenant name it acts as, its secret, whether it sees every tenant, and its own quotas. */
export interface ApiToken {
  name: string;
  secret: string;
  admin: boolean;
  /** Limits set on this token; the rest come from tenantQuotas (non-admin) or are unlimited (admin). */
  quotas?: Partial<Quotas>;
}

/** Every setting the daemon reads, parsed and validated. */
export interface Config {
  previewDomain: string;
  httpPort: number;
  previewEntrypoint: string;
  previewTls: boolean;
  dataDir: string;
  api: { host: string; port: number };
  authDisabled: boolean;
  tokens: ApiToken[];
  /** Quotas of a non-admin tenant whose token sets none (SANDBOXD_TENANT_MAX_*). */
  tenantQuotas: Quotas;
  instance: string;
  /** The runtime backend and its own settings (Docker is the only one today). */
  runtime: { kind: 'docker'; docker: { network: string; nofile: number; tmpfsMb: number; meminfoPath: string } };
  hostFirewall: boolean;
  /** SANDBOXD_EGRESS_ALLOW: CIDR:port pairs sandboxes may reach although they are near the host. */
  egressAllow: EgressAllow[];
  image: string;
  allowedImages: string[];
  defaults: { memoryMb: number; cpus: number; pids: number; diskMb: number };
  maxima: { memoryMb: number; cpus: number; pids: number; diskMb: number };
  /** The host uid/gid that owns every workspace and that sandboxes run as: a system user, never a login user's. */
  sandboxUid: number;
  sandboxGid: number;
  idleTimeoutS: number;
  idleTickS: number;
  gatewayHost: string;
  wakeHoldS: number;
  gatewayQueueWaitS: number;
  startingPageAfterMs: number;
  previewSecret: string | undefined;
  pressure: { tickS: number; softPct: number; hardPct: number; emergencyPct: number; resumePct: number; startFootprintMb: number };
  keepaliveMaxS: number;
  stopGraceS: number;
  tasks: { timeoutS: number; maxTimeoutS: number; cancelGraceS: number; buildTimeoutS: number; healthWaitS: number; heartbeatS: number; maxLineBytes: number; maxEvents: number; maxEventBytes: number; eventsPerS: number; maxOutputMb: number };
  reconcileIntervalS: number;
  creatingStuckS: number;
  reconcileRemoveOrphans: boolean;
  maxBodyBytes: number;
  /** What one client connection to the API may take: slow or oversized requests are cut off. */
  limits: {
    api: { requestTimeoutS: number; headersTimeoutS: number; maxHeaderBytes: number; maxHeaders: number };
    /** The preview gateway's listener: the same cut-offs, plus keep-alive, the upgrade handshake and WebSockets per sandbox. */
    gateway: { requestTimeoutS: number; headersTimeoutS: number; keepAliveTimeoutS: number; upgradeTimeoutS: number; maxHeaderBytes: number; maxHeaders: number; wsPerSandbox: number; upstreamHeadersTimeoutS: number; clientStallS: number; requestsPerClient: number };
    /** Open connections per listener, and per remote address (loopback exempt). */
    maxConnections: number;
    maxConnectionsPerAddress: number;
  };
  fileJsonMaxBytes: number;
  fileReadMaxBytes: number;
  fileWriteMaxBytes: number;
  sqliteBusyTimeoutMs: number;
  /** Free space the data disk must keep: below it, creates and wakes are refused (503) and /readyz fails. */
  minFreeMb: number;
  workerThreads: number;
  /** Caps on what clients can hold open (src/pool.ts, src/exec/sessions.ts, src/auth/failures.ts). */
  caps: { execPerThread: number; execQueueMax: number; execQueueWaitS: number; execOutputMbPerS: number; sessionsPerSandbox: number; sessionsPerTenant: number; authFailuresPerMin: number; authTrackedAddresses: number };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

/** Raised when a setting is invalid; lists every bad variable by name. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

/** Parses and validates the daemon's settings from the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const p = new Reader(env, problems);

  const bind = p.str('SANDBOXED_API_BIND', '127.0.0.1:9090');
  const api = parseBind(bind);
  if (!api) problems.push(`SANDBOXED_API_BIND: expected host:port, e.g. 127.0.0.1:9090 (got '${bind}')`);

  const authDisabled = p.bool('SANDBOXD_API_AUTH_DISABLED', true);
  const tokens = parseTokens(env.SANDBOXD_API_TOKENS ?? '', problems);
  readTokensFile(env.SANDBOXD_API_TOKENS_FILE?.trim(), tokens, problems);
  if (!authDisabled && tokens.length === 0) {
    problems.push('SANDBOXD_API_TOKENS: auth is enabled (SANDBOXD_API_AUTH_DISABLED=false) but no tokens are set; use name:secret[:admin], comma separated, or SANDBOXD_API_TOKENS_FILE');
  }
  if (authDisabled && api && !isLoopback(api.host)) {
    problems.push(`SANDBOXD_API_AUTH_DISABLED: auth may be off only while the API binds loopback, but SANDBOXED_API_BIND is '${bind}'; set SANDBOXD_API_AUTH_DISABLED=false with SANDBOXD_API_TOKENS, or bind 127.0.0.1`);
  }

  const dataDir = p.str('SANDBOXED_DATA_DIR', '/var/lib/sandboxed');
  if (!isAbsolute(dataDir)) problems.push(`SANDBOXED_DATA_DIR: must be an absolute path (got '${dataDir}')`);

  const previewDomain = p.str('PREVIEW_DOMAIN', 'localhost').toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(previewDomain)) {
    problems.push(`PREVIEW_DOMAIN: must be a DNS name such as localhost or example.com (got '${previewDomain}')`);
  }

  const cpus = availableParallelism();
  const image = p.str('SANDBOXD_IMAGE', 'sandboxed/sandbox:latest');
  const config: Config = {
    previewDomain,
    httpPort: p.int('HTTP_PORT', 80, 1, 65535),
    previewEntrypoint: p.str('PREVIEW_ENTRYPOINT', 'web'),
    previewTls: p.bool('PREVIEW_TLS', false),
    dataDir: resolve(dataDir),
    api: api ?? { host: '127.0.0.1', port: 9090 },
    authDisabled,
    tokens,
    tenantQuotas: {
      // Unlimited unless set: a platform's one backend token holds every end user's sandboxes, and a default
      // cap would stop it on upgrade. always_on is the exception: it is for tenants an operator grants it.
      sandboxes: quotaEnv(p, 'SANDBOXD_TENANT_MAX_SANDBOXES', null),
      running: quotaEnv(p, 'SANDBOXD_TENANT_MAX_RUNNING', null),
      memoryMb: quotaEnv(p, 'SANDBOXD_TENANT_MAX_MEMORY_MB', null),
      diskMb: quotaEnv(p, 'SANDBOXD_TENANT_MAX_DISK_MB', null),
      alwaysOn: quotaEnv(p, 'SANDBOXD_TENANT_MAX_ALWAYS_ON', 0),
    },
    instance: p.match('SANDBOXD_INSTANCE', 'default', /^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, . _ -'),
    hostFirewall: p.bool('SANDBOXD_HOST_FIREWALL', true),
    egressAllow: egressAllowFrom(p.str('SANDBOXD_EGRESS_ALLOW', ''), problems),
    runtime: {
      kind: 'docker',
      docker: {
        network: p.match('SANDBOXD_NETWORK', 'sandboxed', /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'letters, digits, . _ -'),
        nofile: p.int('SANDBOXD_NOFILE', 65536, 64, 1 << 20),
        tmpfsMb: p.int('SANDBOXD_TMPFS_MB', 512, 1, 1 << 20),
        meminfoPath: p.str('SANDBOXD_MEMINFO_PATH', '/proc/meminfo'),
      },
    },
    image,
    allowedImages: [image, ...p.list('SANDBOXD_ALLOWED_IMAGES')],
    defaults: {
      memoryMb: p.int('SANDBOXD_DEFAULT_MEMORY_MB', 2048, 64, 1 << 20),
      cpus: p.num('SANDBOXD_DEFAULT_CPUS', 1, 0.01, 1024),
      pids: p.int('SANDBOXD_DEFAULT_PIDS', 1024, 16, 1 << 22),
      diskMb: p.int('SANDBOXD_DEFAULT_DISK_MB', 10240, 32, 1 << 24),
    },
    maxima: {
      memoryMb: p.int('SANDBOXD_MAX_MEMORY_MB', 8192, 64, 1 << 20),
      cpus: p.num('SANDBOXD_MAX_CPUS', cpus, 0.01, 1024),
      pids: p.int('SANDBOXD_MAX_PIDS', 4096, 16, 1 << 22),
      diskMb: p.int('SANDBOXD_MAX_DISK_MB', 102400, 32, 1 << 24),
    },
    // Not 0 (root) and not 1000 (usually the host's first login user); 61000 is above useradd's UID_MAX and below
    // systemd's dynamic users and the subordinate-uid ranges of rootless containers.
    sandboxUid: p.int('SANDBOXD_SANDBOX_UID', 61000, 1, 2 ** 31 - 1),
    sandboxGid: p.int('SANDBOXD_SANDBOX_GID', 61000, 1, 2 ** 31 - 1),
    idleTimeoutS: p.int('SANDBOXD_IDLE_TIMEOUT_S', 1800, 10, 7 * 86400),
    idleTickS: p.int('SANDBOXD_IDLE_TICK_S', 15, 1, 3600),
    gatewayHost: p.str('SANDBOXD_GATEWAY_HOST', '0.0.0.0'),
    wakeHoldS: p.int('SANDBOXD_WAKE_HOLD_S', 20, 1, 600),
    gatewayQueueWaitS: p.int('SANDBOXD_GATEWAY_QUEUE_WAIT_S', 15, 1, 600),
    startingPageAfterMs: p.int('SANDBOXD_STARTING_PAGE_AFTER_MS', 1500, 0, 600_000),
    previewSecret: env.SANDBOXD_PREVIEW_SECRET?.trim() || undefined,
    pressure: {
      tickS: p.int('SANDBOXD_PRESSURE_TICK_S', 5, 1, 3600),
      softPct: p.num('SANDBOXD_PRESSURE_SOFT_PCT', 15, 0, 100),
      hardPct: p.num('SANDBOXD_PRESSURE_HARD_PCT', 10, 0, 100),
      emergencyPct: p.num('SANDBOXD_PRESSURE_EMERGENCY_PCT', 5, 0, 100),
      resumePct: p.num('SANDBOXD_PRESSURE_RESUME_PCT', 12, 0, 100),
      startFootprintMb: p.int('SANDBOXD_START_FOOTPRINT_MB', 256, 0, 1 << 20),
    },
    keepaliveMaxS: p.int('SANDBOXD_KEEPALIVE_MAX_S', 86400, 1, 30 * 86400),
    stopGraceS: p.int('SANDBOXD_STOP_GRACE_S', 10, 0, 600),
    tasks: {
      timeoutS: p.int('SANDBOXD_TASK_TIMEOUT_S', 600, 1, 86400),
      maxTimeoutS: p.int('SANDBOXD_TASK_MAX_TIMEOUT_S', 7200, 1, 7 * 86400),
      cancelGraceS: p.int('SANDBOXD_TASK_CANCEL_GRACE_S', 5, 0, 600),
      buildTimeoutS: p.int('SANDBOXD_TASK_BUILD_TIMEOUT_S', 300, 1, 3600),
      healthWaitS: p.int('SANDBOXD_TASK_HEALTH_WAIT_S', 10, 0, 600),
      heartbeatS: p.int('SANDBOXD_SSE_HEARTBEAT_S', 15, 1, 3600),
      maxLineBytes: p.int('SANDBOXD_TASK_MAX_LINE_BYTES', 1 << 20, 1024, 64 << 20),
      maxEvents: p.int('SANDBOXD_TASK_MAX_EVENTS', 10_000, 100, 10_000_000),
      maxEventBytes: p.int('SANDBOXD_TASK_MAX_EVENT_BYTES', 64 << 20, 1 << 20, 2 ** 40),
      eventsPerS: p.int('SANDBOXD_TASK_EVENTS_PER_S', 500, 1, 100_000),
      maxOutputMb: p.int('SANDBOXD_TASK_MAX_OUTPUT_MB', 1024, 1, 1 << 20),
    },
    reconcileIntervalS: p.int('SANDBOXD_RECONCILE_INTERVAL_S', 30, 1, 3600),
    // At least 120: a create takes up to a minute copying the home's skeleton (SEED_TIMEOUT_MS) and half a minute starting
    // an exec; below that, a periodic pass could take a create that is still under way for a stuck one.
    creatingStuckS: p.int('SANDBOXD_CREATING_STUCK_S', 300, 120, 86400),
    reconcileRemoveOrphans: p.bool('SANDBOXD_RECONCILE_REMOVE_ORPHANS', false),
    maxBodyBytes: p.int('SANDBOXD_MAX_BODY_BYTES', 1 << 20, 1024, 1 << 30),
    limits: {
      api: {
        requestTimeoutS: p.int('SANDBOXD_API_REQUEST_TIMEOUT_S', 300, 1, 86400),
        headersTimeoutS: p.int('SANDBOXD_API_HEADERS_TIMEOUT_S', 20, 1, 600),
        maxHeaderBytes: p.int('SANDBOXD_API_MAX_HEADER_BYTES', 16384, 1024, 1 << 20),
        maxHeaders: p.int('SANDBOXD_API_MAX_HEADERS', 100, 8, 2000),
      },
      gateway: {
        requestTimeoutS: p.int('SANDBOXD_GATEWAY_REQUEST_TIMEOUT_S', 300, 1, 86400),
        headersTimeoutS: p.int('SANDBOXD_GATEWAY_HEADERS_TIMEOUT_S', 20, 1, 600),
        keepAliveTimeoutS: p.int('SANDBOXD_GATEWAY_KEEPALIVE_TIMEOUT_S', 5, 1, 600),
        upgradeTimeoutS: p.int('SANDBOXD_GATEWAY_UPGRADE_TIMEOUT_S', 10, 1, 600),
        maxHeaderBytes: p.int('SANDBOXD_GATEWAY_MAX_HEADER_BYTES', 16384, 1024, 1 << 20),
        maxHeaders: p.int('SANDBOXD_GATEWAY_MAX_HEADERS', 100, 8, 2000),
        wsPerSandbox: p.int('SANDBOXD_PREVIEW_WS_PER_SANDBOX', 256, 1, 1 << 20),
        upstreamHeadersTimeoutS: p.int('SANDBOXD_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_S', 120, 1, 3600),
        clientStallS: p.int('SANDBOXD_GATEWAY_CLIENT_STALL_S', 60, 1, 3600),
        requestsPerClient: p.int('SANDBOXD_GATEWAY_REQUESTS_PER_CLIENT', 16, 1, 1 << 20),
      },
      maxConnections: p.int('SANDBOXD_MAX_CONNECTIONS', 4096, 16, 1 << 20),
      maxConnectionsPerAddress: p.int('SANDBOXD_MAX_CONNECTIONS_PER_ADDRESS', 256, 1, 1 << 20),
    },
    fileJsonMaxBytes: p.int('SANDBOXD_FILE_JSON_MAX_BYTES', 8 << 20, 1024, 1 << 30),
    fileReadMaxBytes: p.int('SANDBOXD_FILE_READ_MAX_BYTES', 10 << 20, 1024, 1 << 30),
    fileWriteMaxBytes: p.int('SANDBOXD_FILE_WRITE_MAX_BYTES', 100 << 20, 1024, 4 * 2 ** 30),
    sqliteBusyTimeoutMs: p.int('SANDBOXD_SQLITE_BUSY_TIMEOUT_MS', 5000, 0, 600_000),
    minFreeMb: p.int('SANDBOXD_MIN_FREE_MB', 512, 0, 1 << 24),
    workerThreads: p.int('SANDBOXD_WORKER_THREADS', Math.max(4, cpus * 2), 2, 256),
    caps: {
      execPerThread: p.int('SANDBOXD_EXEC_PER_THREAD', 64, 1, 1024),
      execQueueMax: p.int('SANDBOXD_EXEC_QUEUE_MAX', 64, 0, 100_000),
      execQueueWaitS: p.int('SANDBOXD_EXEC_QUEUE_WAIT_S', 30, 1, 3600),
      execOutputMbPerS: p.int('SANDBOXD_EXEC_OUTPUT_MB_PER_S', 4, 0, 100_000),
      sessionsPerSandbox: p.int('SANDBOXD_SESSIONS_PER_SANDBOX', 32, 1, 10_000),
      sessionsPerTenant: p.int('SANDBOXD_SESSIONS_PER_TENANT', 128, 1, 100_000),
      authFailuresPerMin: p.int('SANDBOXD_AUTH_FAILURES_PER_MIN', 30, 1, 1_000_000),
      authTrackedAddresses: p.int('SANDBOXD_AUTH_TRACKED_ADDRESSES', 10_000, 100, 1_000_000),
    },
    logLevel: p.oneOf('SANDBOXD_LOG_LEVEL', 'info', ['debug', 'info', 'warn', 'error'] as const),
  };
  if (config.previewSecret !== undefined && config.previewSecret.length < 32) {
    problems.push('SANDBOXD_PREVIEW_SECRET: must be at least 32 characters (or unset, to keep a generated key in the data dir)');
  }
  // The TLS profile (compose --profile tls) publishes the API at api.<PREVIEW_DOMAIN>: never without auth.
  if (authDisabled && (config.previewTls || config.previewEntrypoint === 'websecure')) {
    const set = [config.previewTls ? 'PREVIEW_TLS=true' : '', config.previewEntrypoint === 'websecure' ? 'PREVIEW_ENTRYPOINT=websecure' : ''].filter(Boolean).join(' and ');
    problems.push(`SANDBOXD_API_AUTH_DISABLED: ${set} select the TLS profile, where Traefik publishes the API at api.${previewDomain}, but auth is off; set SANDBOXD_API_AUTH_DISABLED=false with SANDBOXD_API_TOKENS (docs/operations.md, "TLS on a wildcard domain")`);
  }
  const gw = config.limits.gateway;
  if (gw.headersTimeoutS > gw.requestTimeoutS) {
    problems.push(`SANDBOXD_GATEWAY_HEADERS_TIMEOUT_S: ${gw.headersTimeoutS} is above SANDBOXD_GATEWAY_REQUEST_TIMEOUT_S (${gw.requestTimeoutS}); the headers are part of the request`);
  }
  const pr = config.pressure;
  if (!(pr.emergencyPct <= pr.hardPct && pr.hardPct <= pr.resumePct && pr.hardPct <= pr.softPct)) {
    problems.push(`SANDBOXD_PRESSURE_*: need EMERGENCY (${pr.emergencyPct}) <= HARD (${pr.hardPct}) <= RESUME (${pr.resumePct}), and HARD <= SOFT (${pr.softPct})`);
  }
  for (const key of ['memoryMb', 'cpus', 'pids', 'diskMb'] as const) {
    if (config.defaults[key] > config.maxima[key]) {
      problems.push(`SANDBOXD_DEFAULT_${envSuffix[key]}: ${config.defaults[key]} is above SANDBOXD_MAX_${envSuffix[key]} (${config.maxima[key]})`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

const envSuffix = { memoryMb: 'MEMORY_MB', cpus: 'CPUS', pids: 'PIDS', diskMb: 'DISK_MB' } as const;

/**
 * The config as worker threads are sent it (build it once): without the API tokens and the preview-token key.
 * No worker authenticates a client or signs a preview link, and every job's payload is a copy of this, so the
 * secrets stay on the main thread instead of being cloned into each exec, task and reconcile job.
 */
export function workerConfig(config: Config): Config {
  return { ...config, tokens: [], previewSecret: undefined };
}

/** True for addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function parseBind(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

function quotaEnv(p: Reader, name: string, dflt: number | null): number | null {
  const raw = p.str(name, dflt === null ? 'unlimited' : String(dflt));
  const v = quotaValue(raw);
  if (v === undefined) p.problem(`${name}: must be a whole number from 0 to ${QUOTA_MAX}, or unlimited (got '${raw}')`);
  return v === undefined ? dflt : v;
}

/** The parsed SANDBOXD_EGRESS_ALLOW entries; each bad one is added to `problems` by name. */
function egressAllowFrom(value: string, problems: string[]): EgressAllow[] {
  const { entries, problems: bad } = parseEgressAllow(value);
  problems.push(...bad);
  return entries;
}

class Reader {
  private env: Env;
  private problems: string[];

  constructor(env: Env, problems: string[]) {
    this.env = env;
    this.problems = problems;
  }

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  /** Records a problem found outside the typed readers. */
  problem(message: string): void {
    this.problems.push(message);
  }

  str(name: string, dflt: string): string {
    return this.raw(name) ?? dflt;
  }

  list(name: string): string[] {
    return (this.raw(name) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  }

  match(name: string, dflt: string, re: RegExp, what: string): string {
    const v = this.str(name, dflt);
    if (!re.test(v)) this.problems.push(`${name}: must be ${what} (got '${v}')`);
    return v;
  }

  bool(name: string, dflt: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return dflt;
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name}: must be true or false (got '${v}')`);
    return dflt;
  }

  num(name: string, dflt: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name}: must be a number from ${min} to ${max} (got '${v}')`);
      return dflt;
    }
    return n;
  }

  int(name: string, dflt: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: must be a whole number from ${min} to ${max} (got '${v}')`);
      return dflt;
    }
    return n;
  }

  oneOf<T extends string>(name: string, dflt: T, allowed: readonly T[]): T {
    const v = this.str(name, dflt);
    if (!allowed.includes(v as T)) {
      this.problems.push(`${name}: must be one of ${allowed.join(', ')} (got '${v}')`);
      return dflt;
    }
    return v as T;
  }
}
