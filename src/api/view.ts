import type { Config } from '../config.ts';
import type { DiskUsage, LiveState, SandboxRecord } from '../model/sandbox.ts';
import type { Sandbox } from './schemas.ts';

/** A stored millisecond time as ISO 8601, or null. */
export const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** The preview URL of one port; hosts are lowercase because browsers lowercase them anyway. */
export function previewUrl(config: Config, sandboxId: string, port: number): string {
  const scheme = config.previewTls ? 'https' : 'http';
  const portSuffix = config.previewTls || config.httpPort === 80 ? '' : `:${config.httpPort}`;
  return `${scheme}://s-${sandboxId.toLowerCase()}-${port}.preview.${config.previewDomain}${portSuffix}`;
}

/** The public JSON of a sandbox. `id` is the only key named "id": the README's sed line relies on it. */
export function sandboxView(config: Config, s: SandboxRecord, live?: LiveState | null, disk?: DiskUsage | null): Sandbox {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    reason: s.reason,
    status_detail: s.statusDetail,
    last_stop_reason: s.lastStopReason,
    owner: s.owner,
    image: s.image,
    ports: s.ports,
    preview_urls: Object.fromEntries(s.ports.map((p) => [String(p), previewUrl(config, s.id, p)])),
    container_id: s.containerId,
    ...(live === undefined ? {} : {
      runtime: live ? {
        state: live.running ? 'running' as const : 'stopped' as const, running: live.running, exit_code: live.running ? null : live.exitCode,
        oom_killed: live.oomKilled, started_at: live.startedAt, finished_at: live.running ? null : live.finishedAt,
      } : { state: 'absent' as const, running: false, exit_code: null, oom_killed: false, started_at: null, finished_at: null },
      container: live && {
        state: live.state, running: live.running, exit_code: live.exitCode, oom_killed: live.oomKilled,
        started_at: live.startedAt, finished_at: live.finishedAt, ip: live.ip,
      },
    }),
    resources: { memory_mb: s.memoryMb, cpus: s.cpus, pids: s.pids, disk_mb: s.diskMb ?? config.defaults.diskMb },
    ...(disk === undefined ? {} : { disk: disk && { used_mb: disk.usedMb, limit_mb: disk.limitMb } }),
    idle_policy: s.idlePolicy,
    idle_timeout_s: s.idleTimeoutS,
    keepalive_until: iso(s.keepaliveUntil),
    labels: s.labels,
    external: s.external,
    visibility: s.visibility,
    port_visibility: s.portVisibility,
    network: { egress: s.egress },
    env_keys: Object.keys(s.env),
    created_at: iso(s.createdAt)!,
    updated_at: iso(s.updatedAt)!,
    last_active_at: iso(s.lastActiveAt)!,
    stopped_at: iso(s.stoppedAt),
  };
}
