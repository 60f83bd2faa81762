/** Numbered schema migrations: entry N is version N+1. Append only; never edit one that has shipped. */
export const migrations: readonly string[] = [
  `
  CREATE TABLE sandboxes (
    id               TEXT PRIMARY KEY,
    name             TEXT UNIQUE,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status_detail    TEXT,
    version          INTEGER NOT NULL DEFAULT 1,
    image            TEXT NOT NULL,
    ports            TEXT NOT NULL,
    env              TEXT NOT NULL,
    memory_mb        INTEGER NOT NULL,
    cpus             REAL NOT NULL,
    pids             INTEGER NOT NULL,
    idle_policy      TEXT NOT NULL,
    idle_timeout_s   INTEGER NOT NULL,
    labels           TEXT NOT NULL,
    external         TEXT NOT NULL,
    container_id     TEXT,
    keepalive_until  INTEGER,
    last_active_at   INTEGER NOT NULL,
    last_stop_reason TEXT,
    stopped_at       INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
  );
  CREATE INDEX sandboxes_owner ON sandboxes (owner, id);
  CREATE INDEX sandboxes_status ON sandboxes (status);
  CREATE TABLE sandbox_labels (
    sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (sandbox_id, key)
  );
  CREATE INDEX sandbox_labels_kv ON sandbox_labels (key, value);
  CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    sandbox_id  TEXT,
    request_id  TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT
  );
  CREATE INDEX audit_log_sandbox ON audit_log (sandbox_id, seq);
  `,
  `
  CREATE TABLE processes (
    sandbox_id  TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    pid         INTEGER NOT NULL,
    key         TEXT NOT NULL,
    cmd         TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, pid, started_at)
  );
  `,
  `
  CREATE TABLE activity (
    sandbox_id  TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (sandbox_id, source)
  );
  CREATE TABLE leases (
    id          TEXT PRIMARY KEY,
    sandbox_id  TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    opened_at   INTEGER NOT NULL
  );
  CREATE INDEX leases_sandbox ON leases (sandbox_id);
  `,
  `
  ALTER TABLE sandboxes ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
  ALTER TABLE sandboxes ADD COLUMN port_visibility TEXT NOT NULL DEFAULT '{}';
  `,
  `
  CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    sandbox_id     TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    owner          TEXT NOT NULL,
    agent          TEXT NOT NULL,
    model          TEXT,
    prompt         TEXT NOT NULL,
    timeout_s      INTEGER NOT NULL,
    status         TEXT NOT NULL,
    phase          TEXT NOT NULL,
    reason         TEXT,
    error          TEXT,
    result         TEXT,
    checkpoint     TEXT,
    lines_read     INTEGER NOT NULL DEFAULT 0,
    next_seq       INTEGER NOT NULL DEFAULT 1,
    cancel_reason  TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
  );
  CREATE INDEX tasks_sandbox ON tasks (sandbox_id, created_at);
  CREATE UNIQUE INDEX tasks_one_running ON tasks (sandbox_id) WHERE status = 'running';
  CREATE TABLE task_events (
    task_id  TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    type     TEXT NOT NULL,
    data     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (task_id, seq)
  ) WITHOUT ROWID;
  `,
  `
  -- Names are unique per owner, not globally (two tenants may both have app-1): the column-level UNIQUE of
  -- version 1 can only go with a rebuild of the table. The runner applies this with foreign keys off, so
  -- dropping the old table cascades nowhere; rows keep their ids, so every child row still points home.
  CREATE TABLE sandboxes_v6 (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status_detail    TEXT,
    version          INTEGER NOT NULL DEFAULT 1,
    image            TEXT NOT NULL,
    ports            TEXT NOT NULL,
    env              TEXT NOT NULL,
    memory_mb        INTEGER NOT NULL,
    cpus             REAL NOT NULL,
    pids             INTEGER NOT NULL,
    idle_policy      TEXT NOT NULL,
    idle_timeout_s   INTEGER NOT NULL,
    labels           TEXT NOT NULL,
    external         TEXT NOT NULL,
    container_id     TEXT,
    keepalive_until  INTEGER,
    last_active_at   INTEGER NOT NULL,
    last_stop_reason TEXT,
    stopped_at       INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    visibility       TEXT NOT NULL DEFAULT 'public',
    port_visibility  TEXT NOT NULL DEFAULT '{}',
    egress           TEXT NOT NULL DEFAULT 'internet',
    disk_mb          INTEGER
  );
  INSERT INTO sandboxes_v6 (id, name, owner, status, reason, status_detail, version, image, ports, env, memory_mb, cpus, pids, idle_policy, idle_timeout_s, labels, external, container_id, keepalive_until, last_active_at, last_stop_reason, stopped_at, created_at, updated_at, visibility, port_visibility) SELECT id, name, owner, status, reason, status_detail, version, image, ports, env, memory_mb, cpus, pids, idle_policy, idle_timeout_s, labels, external, container_id, keepalive_until, last_active_at, last_stop_reason, stopped_at, created_at, updated_at, visibility, port_visibility FROM sandboxes;
  DROP TABLE sandboxes;
  ALTER TABLE sandboxes_v6 RENAME TO sandboxes;
  CREATE INDEX sandboxes_owner ON sandboxes (owner, id);
  CREATE INDEX sandboxes_status ON sandboxes (status);
  CREATE UNIQUE INDEX sandboxes_owner_name ON sandboxes (owner, name) WHERE name IS NOT NULL;
  `,
  `
  CREATE TABLE secrets (
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (owner, name)
  );
  `,
];
