// The sandbox as the whole program speaks of it: its states and its record. The store persists it, services
// change it, transport renders it; none of them owns the vocabulary.

/** Stable states, and the transient ones a crash can leave behind for the reconciler to finish. */
export const STATUSES = ['creating', 'starting', 'running', 'stopping', 'stopped', 'destroying', 'destroyed', 'purging', 'error'] as const;
export type Status = (typeof STATUSES)[number];
export const TRANSIENT: readonly Status[] = ['creating', 'starting', 'stopping', 'destroying', 'purging'];
/** The states that count against a tenant's running and memory quotas: a container is, or is being, brought up. */
export const HOLDS_CONTAINER: readonly Status[] = ['creating', 'starting', 'running'];

/** One tenant's holdings, as quotas count them (src/sandboxes/quotas.ts). */
export interface OwnerUsage {
  sandboxes: number;
  running: number;
  memoryMb: number;
  diskMb: number;
  alwaysOn: number;
}

export type IdlePolicy = 'sleep' | 'always_on';
export type Visibility = 'public' | 'private';
export type Egress = 'internet' | 'none';

export interface External {
  user_id?: string;
  project_id?: string;
  workspace_id?: string;
}

/** A sandbox as stored: the truth the runtime is converged to. */
export interface SandboxRecord {
  id: string;
  name: string | null;
  owner: string;
  status: Status;
  reason: string;
  statusDetail: string | null;
  version: number;
  image: string;
  ports: number[];
  env: Record<string, string>;
  memoryMb: number;
  cpus: number;
  pids: number;
  idlePolicy: IdlePolicy;
  idleTimeoutS: number;
  labels: Record<string, string>;
  external: External;
  /** Whether previews need a token; `portVisibility` overrides it per port. */
  visibility: Visibility;
  portVisibility: Record<string, Visibility>;
  /** What the sandbox may reach: the public internet, or nothing at all. */
  egress: Egress;
  /** The workspace's size limit in MB; null takes the server's default. */
  diskMb: number | null;
  containerId: string | null;
  keepaliveUntil: number | null;
  lastActiveAt: number;
  lastStopReason: string | null;
  stoppedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export type NewSandbox = Omit<SandboxRecord, 'version' | 'containerId' | 'keepaliveUntil' | 'lastStopReason' | 'stoppedAt' | 'statusDetail' | 'updatedAt' | 'lastActiveAt'>;

/** Disk use of one workspace, in MiB. */
export interface DiskUsage {
  usedMb: number;
  limitMb: number;
}

/**
 * What the runtime reports of a sandbox's live instance, in words any backend can give: `state` is the
 * backend's own word (Docker: created, running, paused, restarting, removing, exited, dead).
 */
export interface LiveState {
  state: string;
  running: boolean;
  exitCode: number;
  oomKilled: boolean;
  startedAt: string | null;
  finishedAt: string | null;
  /** Where the instance answers on the sandbox network; shown for compatibility, never needed by a client. */
  ip: string | null;
}

/** Which sandboxes a listing asks for. */
export interface ListFilter {
  owner?: string;
  status?: Status;
  labels?: [string, string][];
  external?: External;
  /** Exclusive upper bound on id: results are newest first. */
  before?: string;
  limit: number;
  includeDestroyed?: boolean;
}
