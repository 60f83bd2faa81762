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
];
