import type { Db, Param, Row } from './db.ts';
import { HOLDS_CONTAINER, type Status, type OwnerUsage, type IdlePolicy, type Visibility, type Egress, type External, type SandboxRecord, type NewSandbox, type ListFilter } from '../model/sandbox.ts';


/** Extra columns a transition may set alongside status and reason. */
export interface TransitionFields {
  containerId?: string | null;
  statusDetail?: string | null;
  stoppedAt?: number | null;
  lastStopReason?: string | null;
  lastActiveAt?: number;
}

const columnOf: Record<keyof TransitionFields, string> = {
  containerId: 'container_id',
  statusDetail: 'status_detail',
  stoppedAt: 'stopped_at',
  lastStopReason: 'last_stop_reason',
  lastActiveAt: 'last_active_at',
};

/** Queries on the sandboxes table family (sandboxes + sandbox_labels). */
export class SandboxStore {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  insert(s: NewSandbox): SandboxRecord {
    this.db.tx(() => {
      this.db.run(
        `INSERT INTO sandboxes (id, name, owner, status, reason, image, ports, env, memory_mb, cpus, pids, idle_policy,
           idle_timeout_s, labels, external, visibility, port_visibility, egress, disk_mb, last_active_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        s.id, s.name, s.owner, s.status, s.reason, s.image, JSON.stringify(s.ports), JSON.stringify(s.env), s.memoryMb,
        s.cpus, s.pids, s.idlePolicy, s.idleTimeoutS, JSON.stringify(s.labels), JSON.stringify(s.external), s.visibility,
        JSON.stringify(s.portVisibility), s.egress, s.diskMb, s.createdAt, s.createdAt, s.createdAt,
      );
      for (const [k, v] of Object.entries(s.labels)) {
        this.db.run('INSERT INTO sandbox_labels (sandbox_id, key, value) VALUES (?, ?, ?)', s.id, k, v);
      }
    });
    return this.get(s.id)!;
  }

  get(id: string): SandboxRecord | undefined {
    const row = this.db.get('SELECT * FROM sandboxes WHERE id = ?', id);
    return row && fromRow(row);
  }

  /**
   * A cheap freshness check: the row's version (bumped by every transition) and creation time (a purged id
   * created again starts its versions over), or undefined when the row is gone.
   */
  stampOf(id: string): { version: number; createdAt: number } | undefined {
    const row = this.db.get<{ version: number; created_at: number }>('SELECT version, created_at FROM sandboxes WHERE id = ?', id);
    return row && { version: Number(row.version), createdAt: Number(row.created_at) };
  }

  /** The owner's sandbox of that name (names are unique per owner); without an owner, the first of any owner. */
  getByName(name: string, owner?: string): SandboxRecord | undefined {
    const row = owner === undefined
      ? this.db.get('SELECT * FROM sandboxes WHERE name = ? ORDER BY id LIMIT 1', name)
      : this.db.get('SELECT * FROM sandboxes WHERE owner = ? AND name = ?', owner, name);
    return row && fromRow(row);
  }

  /**
   * What `owner` holds, leaving out `exceptId` (the sandbox an action is about); a record without its own
   * disk limit counts `defaultDiskMb`. Read inside the transaction that then writes, so a check and its
   * insert or transition cannot be split by another writer.
   */
  usageOf(owner: string, defaultDiskMb: number, exceptId = ''): OwnerUsage {
    const held = HOLDS_CONTAINER.map(() => '?').join(', ');
    const r = this.db.get(
      `SELECT count(*) AS sandboxes, coalesce(sum(status IN (${held})), 0) AS running,
         coalesce(sum(CASE WHEN status IN (${held}) THEN memory_mb ELSE 0 END), 0) AS memory_mb,
         coalesce(sum(coalesce(disk_mb, ?)), 0) AS disk_mb, coalesce(sum(idle_policy = 'always_on'), 0) AS always_on
       FROM sandboxes WHERE owner = ? AND id <> ?`,
      ...HOLDS_CONTAINER, ...HOLDS_CONTAINER, defaultDiskMb, owner, exceptId,
    )!;
    return { sandboxes: Number(r.sandboxes), running: Number(r.running), memoryMb: Number(r.memory_mb), diskMb: Number(r.disk_mb), alwaysOn: Number(r.always_on) };
  }

  /** How many sandboxes are in each status (statuses with none are left out). */
  countByStatus(): { status: string; n: number }[] {
    return this.db.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM sandboxes GROUP BY status').map((r) => ({ status: r.status, n: Number(r.n) }));
  }

  /** Every sandbox id, for per-sandbox gauges. */
  ids(): string[] {
    return this.db.all<{ id: string }>('SELECT id FROM sandboxes').map((r) => r.id);
  }

  list(f: ListFilter): SandboxRecord[] {
    const where: string[] = [];
    const params: Param[] = [];
    if (f.owner !== undefined) (where.push('owner = ?'), params.push(f.owner));
    if (f.status !== undefined) (where.push('status = ?'), params.push(f.status));
    else if (!f.includeDestroyed) where.push(`status <> 'destroyed'`);
    if (f.before !== undefined) (where.push('id < ?'), params.push(f.before));
    for (const [k, v] of f.labels ?? []) {
      where.push('EXISTS (SELECT 1 FROM sandbox_labels l WHERE l.sandbox_id = sandboxes.id AND l.key = ? AND l.value = ?)');
      params.push(k, v);
    }
    for (const [k, v] of Object.entries(f.external ?? {})) {
      where.push(`json_extract(external, '$.' || ?) = ?`);
      params.push(k, v as string);
    }
    const sql = `SELECT * FROM sandboxes ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.all(sql, ...params, f.limit).map(fromRow);
  }

  /** Every row, for the reconciler. */
  all(): SandboxRecord[] {
    return this.db.all('SELECT * FROM sandboxes ORDER BY id').map(fromRow);
  }

  /**
   * Moves a sandbox to `to` only if it is still in one of `from` (and, when given, still at `version`):
   * a compare-and-set, so the API and the reconciler never overwrite each other's newer decision.
   */
  transition(id: string, from: readonly Status[], to: Status, reason: string, fields: TransitionFields = {}, version?: number): SandboxRecord | undefined {
    const sets = ['status = ?', 'reason = ?', 'version = version + 1', 'updated_at = ?'];
    const params: Param[] = [to, reason, Date.now()];
    for (const [key, value] of Object.entries(fields) as [keyof TransitionFields, Param][]) {
      sets.push(`${columnOf[key]} = ?`);
      params.push(value);
    }
    let sql = `UPDATE sandboxes SET ${sets.join(', ')} WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`;
    params.push(id, ...from);
    if (version !== undefined) (sql += ' AND version = ?', params.push(version));
    return this.db.run(sql, ...params) ? this.get(id) : undefined;
  }

  /** Records activity and optionally a keepalive deadline; not a state change, so the version stays. */
  touch(id: string, at: number, keepaliveUntil?: number): SandboxRecord | undefined {
    if (keepaliveUntil === undefined) this.db.run('UPDATE sandboxes SET last_active_at = ? WHERE id = ?', at, id);
    else this.db.run('UPDATE sandboxes SET last_active_at = ?, keepalive_until = ? WHERE id = ?', at, keepaliveUntil, id);
    return this.get(id);
  }

  delete(id: string): void {
    this.db.run('DELETE FROM sandboxes WHERE id = ?', id);
  }
}

function json<T>(v: unknown): T {
  return JSON.parse(String(v)) as T;
}

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function fromRow(r: Row): SandboxRecord {
  return {
    id: String(r.id),
    name: (r.name as string | null) ?? null,
    owner: String(r.owner),
    status: r.status as Status,
    reason: String(r.reason),
    statusDetail: (r.status_detail as string | null) ?? null,
    version: Number(r.version),
    image: String(r.image),
    ports: json<number[]>(r.ports),
    env: json<Record<string, string>>(r.env),
    memoryMb: Number(r.memory_mb),
    cpus: Number(r.cpus),
    pids: Number(r.pids),
    idlePolicy: r.idle_policy as IdlePolicy,
    idleTimeoutS: Number(r.idle_timeout_s),
    labels: json<Record<string, string>>(r.labels),
    external: json<External>(r.external),
    visibility: r.visibility as Visibility,
    portVisibility: json<Record<string, Visibility>>(r.port_visibility),
    egress: (r.egress as Egress | undefined) ?? 'internet',
    diskMb: num(r.disk_mb),
    containerId: (r.container_id as string | null) ?? null,
    keepaliveUntil: num(r.keepalive_until),
    lastActiveAt: Number(r.last_active_at),
    lastStopReason: (r.last_stop_reason as string | null) ?? null,
    stoppedAt: num(r.stopped_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
