import type { Config } from '../config.ts';
import { withDeadline } from '../deadline.ts';
import { AppError } from '../errors.ts';
import { newId } from '../ids.ts';
import { errorMessage, type Logger } from '../log.ts';
import { isStorageFailure, StorageError } from '../store/disk.ts';
import type { Runtime, SandboxSpec } from '../runtime/runtime.ts';
import { SEED_HOME } from '../runtime/sandbox-scripts.ts';
import type { Store } from '../store/index.ts';
import type { Egress, External, IdlePolicy, SandboxRecord, Status, Visibility } from '../model/sandbox.ts';
import type { Workspaces } from '../workspaces/workspaces.ts';
import type { Admission } from './admission.ts';
import { KeyedLock } from './lock.ts';
import { stopSandbox, type StopDeps } from './stop.ts';
import { checkQuotas, TenantQuotas, type Usage } from './quotas.ts';

/** A create request after schema validation (see api/schemas.ts). */
export interface CreateSandboxInput {
  id?: string;
  name?: string;
  ports?: number[];
  env?: Record<string, string>;
  image?: string;
  resources?: { memory_mb?: number; cpus?: number; pids?: number; disk_mb?: number };
  idle_policy?: IdlePolicy;
  idle_timeout_s?: number;
  labels?: Record<string, string>;
  external?: External;
  visibility?: Visibility;
  port_visibility?: Record<string, Visibility>;
  network?: { egress?: Egress };
}

/** The answer to a create whose client-chosen id is taken, whoever has it: nothing about that sandbox. */
function idNotAvailable(id: string): AppError {
  return new AppError('conflict', `id ${id} is not available; omit id to get a fresh one, or choose another ULID`, { field: 'id' });
}

/** Who asked, for ownership and the audit log. */
export interface Actor {
  name: string;
  requestId: string;
  /** An admin acting on another tenant's sandbox is not held to that tenant's quotas (the operator's override). */
  admin?: boolean;
}

/** How long the copy of a new home's skeleton may take (a large skeleton on a slow disk); the create fails past it. */
const SEED_TIMEOUT_MS = 60_000;

/** The sandbox lifecycle: every state change is committed to SQLite before the runtime call that follows it. */
export class Lifecycle {
  private locks = new KeyedLock();

  private config: Config;
  private store: Store;
  private runtime: Runtime;
  private workspaces: Workspaces;
  private log: Logger;
  private admission: Admission;
  private quotas: TenantQuotas;

  constructor(config: Config, store: Store, runtime: Runtime, workspaces: Workspaces, admission: Admission, log: Logger) {
    this.admission = admission;
    this.quotas = new TenantQuotas(config);
    this.config = config;
    this.store = store;
    this.runtime = runtime;
    this.workspaces = workspaces;
    this.log = log;
  }

  /** Validates everything a create needs, then makes the row, the workspace and the running container. */
  async create(input: CreateSandboxInput, actor: Actor): Promise<SandboxRecord> {
    const id = input.id ?? newId();
    const image = input.image ?? this.config.image;
    const resources = this.resolveResources(input.resources);
    await this.checkCreatable(id, input.name, image, actor);
    this.admission.check('create a sandbox', resources.memoryMb);

    return this.locks.run(id, async () => {
      const now = Date.now();
      let rec: SandboxRecord;
      try {
        // The quota check and the insert share one transaction: two creates cannot both take the last slot.
        const diskMb = input.resources?.disk_mb ?? this.defaultDiskMb();
        const adding = { sandboxes: 1, running: 1, memoryMb: resources.memoryMb, diskMb, alwaysOn: input.idle_policy === 'always_on' ? 1 : 0 };
        rec = this.store.db.tx(() => {
          this.admitQuota(actor, actor.name, id, 'create a sandbox', adding);
          return this.store.sandboxes.insert({
            id, name: input.name ?? null, owner: actor.name, status: 'creating', reason: 'created', image,
            ports: input.ports ?? [3000], env: input.env ?? {}, ...resources,
            idlePolicy: input.idle_policy ?? 'sleep', idleTimeoutS: input.idle_timeout_s ?? this.config.idleTimeoutS,
            labels: input.labels ?? {}, external: input.external ?? {},
            visibility: input.visibility ?? 'public', portVisibility: input.port_visibility ?? {}, egress: input.network?.egress ?? 'internet', diskMb, createdAt: now,
          });
        });
      } catch (err) {
        // Two creates racing for the same id or name: the unique index decides.
        // Only the caller's own names collide (the index is per owner); an id may be another tenant's: say nothing of it.
        if (/UNIQUE constraint failed/.test(errorMessage(err))) {
          throw /name/.test(errorMessage(err))
            ? new AppError('conflict', `the name '${input.name}' is already used by another of your sandboxes; choose another name`, { field: 'name' })
            : idNotAvailable(id);
        }
        throw err;
      }
      this.audit(actor, 'sandbox.create', id, 'ok', { image, ports: rec.ports, env_keys: Object.keys(rec.env) });

      let homeIsNew = false;
      try {
        homeIsNew = await this.workspaces.ensure(id, { limitMb: rec.diskMb ?? this.defaultDiskMb(), convert: false });
        // A container with our name but no row can only be debris of an earlier purge of this id.
        await this.runtime.remove(id);
        const containerId = await this.runtime.create(this.specOf(rec));
        await this.runtime.start(id);
        if (homeIsNew) await this.seedHome(id);
        return this.store.sandboxes.transition(id, ['creating'], 'running', 'created', { containerId, lastActiveAt: Date.now() })!;
      } catch (err) {
        this.log.error('create failed; undoing it', { sandbox: id, error: errorMessage(err) });
        await this.runtime.remove(id).catch(() => undefined);
        if (homeIsNew) await this.workspaces.purge(id).catch(() => undefined);
        this.store.sandboxes.delete(id);
        this.audit(actor, 'sandbox.create', id, 'failed', { error: errorMessage(err) });
        // No room for the workspace's reserved blocks (or any other write) is the data disk's state: 503.
        if (isStorageFailure(err)) throw new StorageError(this.config.dataDir, err);
        throw new AppError('sandbox_unavailable', `the sandbox could not be created: ${errorMessage(err)}`);
      }
    });
  }

  /** Starts a sandbox, recreating its container from the stored record when it is missing; only from the statuses in `from` (an anonymous wake passes running/stopped: it never undoes a destroy or an error). */
  async start(id: string, reason: string, actor: Actor, from: Status[] = ['running', 'stopped', 'error', 'destroyed']): Promise<SandboxRecord> {
    return this.locks.run(id, async () => {
      const rec = this.mustGet(id);
      if (rec.status === 'running') {
        const live = await this.runtime.inspect(id);
        if (live?.running) return rec;
      }
      this.admission.check('start a sandbox', rec.memoryMb);
      // The quota check and the claim share one transaction, like create's.
      const starting = this.store.db.tx(() => {
        this.admitQuota(actor, rec.owner, id, 'start this sandbox', { running: 1, memoryMb: rec.memoryMb });
        return this.store.sandboxes.transition(id, from, 'starting', reason, { statusDetail: null });
      }) ?? this.conflict(rec, 'start');
      this.audit(actor, 'sandbox.start', id, 'ok', { reason });
      try {
        const live = await this.runtime.inspect(id);
        // A plain-directory home (an older version's) is converted to an image only while no container holds it.
        await this.workspaces.ensure(id, { limitMb: rec.diskMb ?? this.defaultDiskMb(), convert: !live?.running });
        let containerId = live?.containerId;
        if (!containerId) {
          if (!(await this.runtime.imageExists(rec.image))) throw new Error(`image '${rec.image}' is not on this host; build it, then start again`);
          containerId = await this.runtime.create(this.specOf(starting));
        }
        await this.runtime.start(id);
        return this.store.sandboxes.transition(id, ['starting'], 'running', reason, { containerId, lastActiveAt: Date.now() })!;
      } catch (err) {
        this.store.sandboxes.transition(id, ['starting'], 'error', 'start_failed', { statusDetail: errorMessage(err) });
        throw new AppError('sandbox_unavailable', `the sandbox could not be started: ${errorMessage(err)}`);
      }
    });
  }

  /** Stops a sandbox's container (its workspace stays); stopping a stopped sandbox changes nothing. */
  async stop(id: string, reason: string, actor: Actor): Promise<SandboxRecord> {
    return this.locks.run(id, async () => {
      const rec = this.mustGet(id);
      if (rec.status === 'stopped' || rec.status === 'destroyed') return rec;
      const done = await stopSandbox(this.stopDeps(), id, reason, { from: ['running', 'error'], version: rec.version });
      if (done.outcome === 'not_claimed') this.conflict(this.mustGet(id), 'stop');
      this.audit(actor, 'sandbox.stop', id, done.outcome === 'stopped' ? 'ok' : 'failed', { reason });
      if (done.outcome === 'failed') throw new AppError('sandbox_unavailable', `the sandbox could not be stopped: ${done.error}; retry the stop`);
      return done.record;
    });
  }

  /** Removes the container and keeps the workspace; the record stays so `start` can bring it back. */
  async destroy(id: string, actor: Actor): Promise<SandboxRecord> {
    return this.locks.run(id, async () => {
      const rec = this.mustGet(id);
      if (rec.status === 'destroyed') return rec;
      this.store.sandboxes.transition(id, ['running', 'stopped', 'error'], 'destroying', 'api_delete') ?? this.conflict(rec, 'delete');
      this.audit(actor, 'sandbox.delete', id, 'ok');
      await this.runtime.remove(id).catch((err) => {
        throw new AppError('sandbox_unavailable', `the container could not be removed: ${errorMessage(err)}; retry the delete`);
      });
      const now = Date.now();
      return this.store.sandboxes.transition(id, ['destroying'], 'destroyed', 'api_delete', {
        containerId: null, stoppedAt: rec.stoppedAt ?? now, lastStopReason: 'api_delete',
      })!;
    });
  }

  /** Removes the container, the workspace and the record. */
  async purge(id: string, actor: Actor): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = this.mustGet(id);
      this.store.sandboxes.transition(id, ['running', 'stopped', 'error', 'destroyed'], 'purging', 'api_purge') ?? this.conflict(rec, 'purge');
      this.audit(actor, 'sandbox.purge', id, 'ok');
      try {
        await this.runtime.remove(id);
        await this.workspaces.purge(id);
      } catch (err) {
        throw new AppError('sandbox_unavailable', `the purge did not finish: ${errorMessage(err)}; retry it (the reconciler also finishes it)`);
      }
      this.store.sandboxes.delete(id);
    });
  }

  /**
   * Runs host-side work on a sandbox's files under its lifecycle lock, only while nothing in it can run:
   * its row is stopped, destroyed or in error and its container is not running. Every start (API, gateway
   * wake, exec, task) takes the same lock, so it waits until fn ends. Answers `{ran: false}` without
   * calling fn when the sandbox runs (or is mid-transition): the caller then works inside the container.
   */
  async whileStopped<T>(id: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false; status: Status }> {
    return this.locks.run(id, async () => {
      const rec = this.mustGet(id);
      if (!['stopped', 'destroyed', 'error'].includes(rec.status)) return { ran: false as const, status: rec.status };
      if ((await this.runtime.inspect(id))?.running) return { ran: false as const, status: rec.status };
      return { ran: true as const, value: await fn() };
    });
  }

  /** Postpones idle stop: records activity now and a keepalive deadline `seconds` ahead (capped). */
  keepalive(id: string, seconds: number | undefined, actor: Actor): SandboxRecord {
    const rec = this.mustGet(id);
    const span = Math.min(seconds ?? rec.idleTimeoutS, this.config.keepaliveMaxS);
    const now = Date.now();
    this.audit(actor, 'sandbox.keepalive', id, 'ok', { seconds: span });
    return this.store.sandboxes.touch(id, now, now + span * 1000)!;
  }

  private async checkCreatable(id: string, name: string | undefined, image: string, actor: Actor): Promise<void> {
    const existing = this.store.sandboxes.get(id);
    // Another tenant's id gets the answer a taken id always gets, with nothing of that sandbox in it.
    if (existing && existing.owner !== actor.name) throw idNotAvailable(id);
    if (existing) {
      const hint = existing.status === 'destroyed' ? `; POST /v1/sandboxes/${id}/start recreates its container with the kept workspace` : '';
      throw new AppError('conflict', `you already have sandbox ${id} (status ${existing.status})${hint}`, { field: 'id' });
    }
    if (name !== undefined && this.store.sandboxes.getByName(name, actor.name)) {
      throw new AppError('conflict', `the name '${name}' is already used by another of your sandboxes; choose another name`, { field: 'name' });
    }
    if (!this.config.allowedImages.includes(image)) {
      throw new AppError('invalid_request', `image '${image}' is not allowed; allowed: ${this.config.allowedImages.join(', ')} (SANDBOXD_ALLOWED_IMAGES)`, { field: 'image' });
    }
    if (!(await this.runtime.imageExists(image))) {
      throw new AppError('invalid_request', `image '${image}' is not on this host; build it first (./install.sh builds the sandbox image)`, { field: 'image' });
    }
  }

  /**
   * Throws quota_exceeded when `adding` would take `owner` past a quota. Call inside the transaction that
   * then writes the row, so the usage read is still true at the write.
   */
  private admitQuota(actor: Actor, owner: string, id: string, action: string, adding: Partial<Usage>): void {
    if (actor.admin && actor.name !== owner) return;
    checkQuotas(this.quotas.of(owner), this.store.sandboxes.usageOf(owner, this.defaultDiskMb(), id), adding, action);
  }

  /** The workspace limit of a sandbox created without resources.disk_mb. */
  private defaultDiskMb(): number {
    return this.config.defaults.diskMb;
  }

  private resolveResources(r: CreateSandboxInput['resources']): { memoryMb: number; cpus: number; pids: number } {
    const { defaults, maxima } = this.config;
    const out = { memoryMb: r?.memory_mb ?? defaults.memoryMb, cpus: r?.cpus ?? defaults.cpus, pids: r?.pids ?? defaults.pids };
    const over = (field: string, value: number, max: number, env: string) => {
      if (value > max) throw new AppError('invalid_request', `resources.${field} ${value} is above this server's maximum ${max} (${env})`, { field: `resources.${field}` });
    };
    over('memory_mb', out.memoryMb, maxima.memoryMb, 'SANDBOXD_MAX_MEMORY_MB');
    over('cpus', out.cpus, maxima.cpus, 'SANDBOXD_MAX_CPUS');
    over('pids', out.pids, maxima.pids, 'SANDBOXD_MAX_PIDS');
    over('disk_mb', r?.disk_mb ?? defaults.diskMb, maxima.diskMb, 'SANDBOXD_MAX_DISK_MB');
    return out;
  }

  private specOf(rec: SandboxRecord): SandboxSpec {
    return {
      sandboxId: rec.id, image: rec.image, env: rec.env, ports: rec.ports, workspace: this.workspaces.mountOf(rec.id),
      memoryMb: rec.memoryMb, cpus: rec.cpus, pids: rec.pids, egress: rec.egress,
    };
  }

  /** Has the sandbox copy its image's skeleton into its new home (SEED_HOME), within SEED_TIMEOUT_MS; throws naming what failed. */
  private async seedHome(id: string): Promise<void> {
    const session = await this.runtime.exec(id, { cmd: ['/bin/sh', '-c', SEED_HOME], cwd: '/' });
    let stderr = '';
    session.onOutput((stream, chunk) => void (stream === 'stderr' && stderr.length < 4096 && (stderr += chunk.toString('utf8'))));
    try {
      const { exitCode } = await withDeadline(session.done, SEED_TIMEOUT_MS, () => new Error(`copying the image's home skeleton took longer than ${SEED_TIMEOUT_MS / 1000} s`));
      if (exitCode !== 0) throw new Error(`copying the image's home skeleton failed (exit ${exitCode}): ${stderr.trim().slice(0, 500)}`);
    } catch (err) {
      await session.kill('KILL').catch(() => undefined);
      throw err;
    }
  }

  private stopDeps(): StopDeps {
    return { store: this.store, runtime: this.runtime, stopGraceS: this.config.stopGraceS, log: this.log };
  }

  private mustGet(id: string): SandboxRecord {
    const rec = this.store.sandboxes.get(id);
    if (!rec) throw new AppError('not_found', `sandbox ${id} not found`);
    return rec;
  }

  private conflict(rec: SandboxRecord, op: string): never {
    throw new AppError('conflict', `cannot ${op} sandbox ${rec.id} while it is ${rec.status}; retry in a moment`, { status: rec.status });
  }

  private audit(actor: Actor, action: string, sandboxId: string, outcome: 'ok' | 'failed', detail?: Record<string, unknown>): void {
    this.store.audit.record({ actor: actor.name, action, sandboxId, requestId: actor.requestId, outcome, ...(detail ? { detail } : {}) });
  }
}
