import type { Config, Quotas } from '../config.ts';
import { AppError } from '../errors.ts';

/** What a tenant holds now, in the units of its quotas (see SandboxStore.usageOf). */
export interface Usage {
  /** Every record, destroyed ones too: they keep a workspace. */
  sandboxes: number;
  /** Records that hold a container up: creating, starting, running. */
  running: number;
  /** The memory limits of those, in MB. */
  memoryMb: number;
  /** The workspace size limits of every record, in MB (a record without one counts SANDBOXD_DEFAULT_DISK_MB). */
  diskMb: number;
  /** Records with idle_policy always_on. */
  alwaysOn: number;
}

const UNLIMITED: Quotas = { sandboxes: null, running: null, memoryMb: null, diskMb: null, alwaysOn: null };

/** How each quota is named to clients and operators: the key in tokens, and the variable of its default. */
const NAMES: Record<keyof Quotas, { key: string; env: string; unit: string }> = {
  sandboxes: { key: 'sandboxes', env: 'SANDBOXD_TENANT_MAX_SANDBOXES', unit: 'sandboxes' },
  running: { key: 'running', env: 'SANDBOXD_TENANT_MAX_RUNNING', unit: 'running sandboxes' },
  memoryMb: { key: 'memory_mb', env: 'SANDBOXD_TENANT_MAX_MEMORY_MB', unit: 'MB of memory limits of running sandboxes' },
  diskMb: { key: 'disk_mb', env: 'SANDBOXD_TENANT_MAX_DISK_MB', unit: 'MB of workspace limits' },
  alwaysOn: { key: 'always_on', env: 'SANDBOXD_TENANT_MAX_ALWAYS_ON', unit: 'always_on sandboxes' },
};

/** What freeing room looks like for each quota, for the refusal's message. */
const REMEDY: Record<keyof Quotas, string> = {
  sandboxes: 'purge one (DELETE /v1/sandboxes/{id}?purge=true)',
  running: 'stop one (POST /v1/sandboxes/{id}/stop)',
  memoryMb: 'stop one or ask for less (resources.memory_mb)',
  diskMb: 'purge one or ask for less (resources.disk_mb)',
  alwaysOn: 'use idle_policy sleep',
};

/** The quotas of each tenant, from its tokens and the server defaults. */
export class TenantQuotas {
  private config: Config;

  constructor(config: Config) {
    this.config = config;
  }

  /**
   * The quotas of tenant `owner`. Auth off: unlimited (the one local caller is the operator). An admin
   * tenant: only what its token sets. Any other: its token's values over SANDBOXD_TENANT_MAX_*; a tenant
   * with no token left (removed from the config) keeps the defaults, so its sandboxes stay bounded.
   */
  of(owner: string): Quotas {
    if (this.config.authDisabled) return UNLIMITED;
    const token = this.config.tokens.find((t) => t.name === owner && t.quotas) ?? this.config.tokens.find((t) => t.name === owner);
    const base = token?.admin ? UNLIMITED : this.config.tenantQuotas;
    return { ...base, ...token?.quotas };
  }
}

/**
 * Throws `403 quota_exceeded` when `adding` on top of `usage` would pass one of `quotas`; the message and
 * details name the quota, its limit, the current use and what the action asks for. Checks in a fixed order
 * so a client sees the same refusal for the same state.
 */
export function checkQuotas(quotas: Quotas, usage: Usage, adding: Partial<Usage>, action: string): void {
  for (const q of ['sandboxes', 'alwaysOn', 'running', 'memoryMb', 'diskMb'] as const) {
    const limit = quotas[q];
    const add = adding[q] ?? 0;
    if (limit === null || add === 0 || usage[q] + add <= limit) continue;
    const n = NAMES[q];
    throw new AppError(
      'quota_exceeded',
      `cannot ${action}: quota ${n.key} is ${limit} ${n.unit} and this tenant uses ${usage[q]} (the request needs ${add} more); ${REMEDY[q]}, or ask the operator to raise it (per token, or ${n.env})`,
      { quota: n.key, limit, used: usage[q], requested: add },
    );
  }
}
