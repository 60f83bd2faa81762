import { Type, type Static } from '@sinclair/typebox';
import { STATUSES } from '../model/sandbox.ts';

/** One schema per request and response; validation, types and /openapi.json all come from here. */

const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'A TCP port the app listens on inside the sandbox.' });
const EnvKey = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
/** Text that may not hold a NUL byte (argv, env values, paths). */
export const NoNul = '^[^\\u0000]*$';

/** Environment variables: names a shell accepts, values without NUL. */
export function EnvMap(description: string) {
  return Type.Record(Type.String({ pattern: EnvKey }), Type.String({ maxLength: 32768, pattern: NoNul }), {
    maxProperties: 128, additionalProperties: false, description,
  });
}
const LabelKey = '^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$';
const Text256 = Type.String({ minLength: 1, maxLength: 256 });

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable machine-readable code.' }),
    message: Type.String(),
    retryable: Type.Boolean(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    request_id: Type.String(),
  }),
}, { $id: 'Error' });

export const External = Type.Object({
  user_id: Type.Optional(Text256),
  project_id: Type.Optional(Text256),
  workspace_id: Type.Optional(Text256),
}, { additionalProperties: false, description: "Ids from the caller's own system, for filtering." });

export const CreateSandbox = Type.Object({
  id: Type.Optional(Type.String({ pattern: '^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$', description: 'A ULID (any case); generated when absent.' })),
  name: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,63}$', description: "Unique among the tenant's own sandboxes; usable wherever an id is (an admin reaching another tenant's writes owner%2Fname)." })),
  ports: Type.Optional(Type.Array(Port, { minItems: 1, maxItems: 16, uniqueItems: true, description: 'Preview ports; default [3000].' })),
  env: Type.Optional(EnvMap('Injected into the container and every exec and task.')),
  image: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  resources: Type.Optional(Type.Object({
    memory_mb: Type.Optional(Type.Integer({ minimum: 64 })),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    pids: Type.Optional(Type.Integer({ minimum: 16 })),
    disk_mb: Type.Optional(Type.Integer({ minimum: 32, description: 'Workspace size limit in MiB (kernel-enforced: writes past it get ENOSPC); default SANDBOXD_DEFAULT_DISK_MB, at most SANDBOXD_MAX_DISK_MB.' })),
  }, { additionalProperties: false })),
  idle_policy: Type.Optional(Type.Union([Type.Literal('sleep'), Type.Literal('always_on')], { description: 'always_on counts against the tenant\'s always_on quota (0 unless granted; 403 quota_exceeded).' })),
  idle_timeout_s: Type.Optional(Type.Integer({ minimum: 10, maximum: 7 * 86400 })),
  labels: Type.Optional(Type.Record(Type.String({ pattern: LabelKey }), Type.String({ maxLength: 256 }), { maxProperties: 32, additionalProperties: false })),
  external: Type.Optional(External),
  visibility: Type.Optional(Type.Union([Type.Literal('public'), Type.Literal('private')], { description: 'private: previews need a preview token or an API token. Default public.' })),
  port_visibility: Type.Optional(Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,4}$' }), Type.Union([Type.Literal('public'), Type.Literal('private')]), {
    additionalProperties: false, maxProperties: 16, description: 'Per-port override of visibility, e.g. {"3000": "public"}.',
  })),
  network: Type.Optional(Type.Object({
    egress: Type.Optional(Type.Union([Type.Literal('internet'), Type.Literal('none')], {
      description: 'internet (default): the public internet, nothing near the host. none: nothing outside the sandbox; only the preview gateway reaches it.',
    })),
  }, { additionalProperties: false })),
}, { additionalProperties: false, $id: 'CreateSandbox' });
export type CreateSandbox = Static<typeof CreateSandbox>;

export const Keepalive = Type.Object({
  seconds: Type.Optional(Type.Integer({ minimum: 1, description: 'How long to postpone idle stop; capped by SANDBOXD_KEEPALIVE_MAX_S.' })),
}, { additionalProperties: false, $id: 'Keepalive' });
export type Keepalive = Static<typeof Keepalive>;

export const ListQuery = Type.Object({
  status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
  label: Type.Optional(Type.Array(Type.String({ pattern: '^[^=]+=.*$' }), { maxItems: 16, description: 'key=value; repeat to AND several.' })),
  user_id: Type.Optional(Text256),
  project_id: Type.Optional(Text256),
  workspace_id: Type.Optional(Text256),
  owner: Type.Optional(Type.String({ maxLength: 64, description: 'Admin tokens only: one tenant.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });
export type ListQuery = Static<typeof ListQuery>;

export const DeleteQuery = Type.Object({
  purge: Type.Optional(Type.Boolean({ description: 'Also delete the workspace and the record.' })),
}, { additionalProperties: false });
export type DeleteQuery = Static<typeof DeleteQuery>;

export const NoQuery = Type.Object({}, { additionalProperties: false });

const Container = Type.Object({
  state: Type.String(),
  running: Type.Boolean(),
  exit_code: Type.Integer(),
  oom_killed: Type.Boolean(),
  started_at: Type.Union([Type.String(), Type.Null()]),
  finished_at: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});

const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

/** The live instance in words every runtime backend can give. */
const RuntimeView = Type.Object({
  state: Type.Union([Type.Literal('running'), Type.Literal('stopped'), Type.Literal('absent')], { description: '`absent`: no instance exists (destroyed, or never created).' }),
  running: Type.Boolean(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  oom_killed: Type.Boolean(),
  started_at: Type.Union([Type.String(), Type.Null()]),
  finished_at: Type.Union([Type.String(), Type.Null()]),
});

export const Sandbox = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  reason: Type.String(),
  status_detail: Type.Union([Type.String(), Type.Null()]),
  last_stop_reason: Type.Union([Type.String(), Type.Null()]),
  owner: Type.String(),
  image: Type.String(),
  ports: Type.Array(Type.Integer()),
  preview_urls: Type.Record(Type.String(), Type.String()),
  container_id: Type.Union([Type.String(), Type.Null()]),
  runtime: Type.Optional(Type.Object(RuntimeView.properties, { description: 'Live state from the runtime (single-sandbox reads only).' })),
  container: Type.Optional(Type.Union([Container, Type.Null()], { description: 'Deprecated, kept for older clients: the same live state in Docker\'s words (null when absent); read `runtime`.' })),
  resources: Type.Object({ memory_mb: Type.Integer(), cpus: Type.Number(), pids: Type.Integer(), disk_mb: Type.Integer() }),
  disk: Type.Optional(Type.Union([Type.Object({ used_mb: Type.Integer(), limit_mb: Type.Integer() }), Type.Null()], {
    description: 'Workspace use and limit in MiB (single-sandbox reads only); null while an older plain-directory workspace awaits conversion at its next start.',
  })),
  idle_policy: Type.String(),
  idle_timeout_s: Type.Integer(),
  keepalive_until: Timestamp,
  labels: Type.Record(Type.String(), Type.String()),
  external: External,
  visibility: Type.String(),
  port_visibility: Type.Record(Type.String(), Type.String()),
  network: Type.Object({ egress: Type.Union([Type.Literal('internet'), Type.Literal('none')]) }),
  env_keys: Type.Array(Type.String(), { description: 'Names only: values are never returned.' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  last_active_at: Type.String({ format: 'date-time' }),
  stopped_at: Timestamp,
}, { $id: 'Sandbox' });
export type Sandbox = Static<typeof Sandbox>;

export const SandboxList = Type.Object({
  data: Type.Array(Type.Ref('Sandbox')),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const SandboxArray = Type.Array(Type.Ref('Sandbox'));

export const Purged = Type.Object({ id: Type.String(), status: Type.Literal('purged') });

export const PreviewTokenRequest = Type.Object({
  ttl_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86400, description: 'Lifetime in seconds; default 3600.' })),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Limit the token to one preview port.' })),
}, { additionalProperties: false });
export type PreviewTokenRequest = Static<typeof PreviewTokenRequest>;

export const PreviewToken = Type.Object({
  token: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  urls: Type.Record(Type.String(), Type.String(), { description: 'Preview URLs with the token attached, per port it opens.' }),
});

export const Ready = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Object({
    sqlite: Type.String(), runtime: Type.String(), disk: Type.String(),
    egress: Type.String({ description: 'ok, off (SANDBOXD_HOST_FIREWALL=false), or what of the egress firewall is missing (the reconcile pass puts it back).' }),
  }),
  data_disk: Type.Object({ free_bytes: Type.Union([Type.Integer(), Type.Null()]), min_free_bytes: Type.Integer() }),
});
