-- kiln's SQLite schema. Applied by src/store/sqlite/migrate.rs: each `-- migration N` block runs once, in
-- order, inside one transaction that also sets PRAGMA user_version = N. Never edit a block that
-- has shipped; add a new one at the end.
-- Times are INTEGER microseconds since the Unix epoch (UTC). IDs are UUID strings.

-- migration 1
CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    icon         TEXT NOT NULL DEFAULT '',
    is_default   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name            TEXT NOT NULL DEFAULT '',
    hashed_password TEXT NOT NULL DEFAULT '',
    login_type      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active',
    -- Site roles as a space-separated list: '' (member), 'owner', 'template-admin'.
    roles           TEXT NOT NULL DEFAULT '',
    avatar_url      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL
);

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

-- An API key is `<id>-<secret>`; only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    hashed_secret BLOB NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id),
    login_type    TEXT NOT NULL,
    token_name    TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used     INTEGER NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- Uploaded template archives, content-addressed by SHA-256.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    mimetype   TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);

-- One queue for template imports and workspace builds. The status word is derived from
-- started_at / completed_at / canceled_at / error (src/model/status.rs), never stored.
CREATE TABLE provisioner_jobs (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE, -- creation order, the queue's FIFO key
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    completed_at    INTEGER,
    canceled_at     INTEGER,
    error           TEXT NOT NULL DEFAULT '',
    error_code      TEXT NOT NULL DEFAULT '',
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    initiator_id    TEXT NOT NULL REFERENCES users(id),
    file_id         TEXT NOT NULL REFERENCES files(id),
    type            TEXT NOT NULL, -- workspace_build | template_version_import
    input           TEXT NOT NULL, -- JSON: {"workspace_build_id": ...} or {"template_version_id": ...}
    worker_id       TEXT,
    log_level       TEXT NOT NULL DEFAULT 'info',
    logs_length     INTEGER NOT NULL DEFAULT 0,
    logs_overflowed INTEGER NOT NULL DEFAULT 0
);
-- The pending queue, oldest first.
CREATE INDEX provisioner_jobs_pending ON provisioner_jobs(seq)
    WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL;
-- Jobs in flight (for start-up recovery and the hung-job sweep).
CREATE INDEX provisioner_jobs_running ON provisioner_jobs(updated_at)
    WHERE started_at IS NOT NULL AND completed_at IS NULL;

CREATE TABLE provisioner_job_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL REFERENCES provisioner_jobs(id),
    created_at INTEGER NOT NULL,
    source     TEXT NOT NULL, -- provisioner_daemon | provisioner
    level      TEXT NOT NULL, -- trace | debug | info | warn | error
    stage      TEXT NOT NULL,
    output     TEXT NOT NULL
);
CREATE INDEX provisioner_job_logs_job ON provisioner_job_logs(job_id, id);

CREATE TABLE templates (
    id                               TEXT PRIMARY KEY,
    organization_id                  TEXT NOT NULL REFERENCES organizations(id),
    name                             TEXT NOT NULL,
    display_name                     TEXT NOT NULL DEFAULT '',
    description                      TEXT NOT NULL DEFAULT '',
    icon                             TEXT NOT NULL DEFAULT '',
    active_version_id                TEXT NOT NULL,
    default_ttl_ms                   INTEGER NOT NULL DEFAULT 0,
    allow_user_cancel_workspace_jobs INTEGER NOT NULL DEFAULT 1,
    created_by                       TEXT NOT NULL REFERENCES users(id),
    created_at                       INTEGER NOT NULL,
    updated_at                       INTEGER NOT NULL,
    deleted                          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (organization_id, name)
);

CREATE TABLE template_versions (
    id              TEXT PRIMARY KEY,
    template_id     TEXT REFERENCES templates(id),
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL,
    message         TEXT NOT NULL DEFAULT '',
    readme          TEXT NOT NULL DEFAULT '',
    job_id          TEXT NOT NULL REFERENCES provisioner_jobs(id),
    file_id         TEXT NOT NULL REFERENCES files(id),
    -- The validated kiln.json manifest, written by the import job when it succeeds.
    manifest        TEXT,
    created_by      TEXT NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX template_versions_template ON template_versions(template_id, created_at);

CREATE TABLE workspaces (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations(id),
    owner_id           TEXT NOT NULL REFERENCES users(id),
    template_id        TEXT NOT NULL REFERENCES templates(id),
    name               TEXT NOT NULL,
    ttl_ms             INTEGER,
    autostart_schedule TEXT,
    automatic_updates  TEXT NOT NULL DEFAULT 'never',
    deleted            INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces(owner_id, name COLLATE NOCASE) WHERE deleted = 0;

CREATE TABLE workspace_builds (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id),
    template_version_id TEXT NOT NULL REFERENCES template_versions(id),
    build_number        INTEGER NOT NULL,
    transition          TEXT NOT NULL, -- start | stop | delete
    initiator_id        TEXT NOT NULL REFERENCES users(id),
    job_id              TEXT NOT NULL UNIQUE REFERENCES provisioner_jobs(id),
    reason              TEXT NOT NULL DEFAULT 'initiator',
    orphan              INTEGER NOT NULL DEFAULT 0,
    -- The provisioner state this build starts from; replaced by the job's new state on success.
    state               BLOB NOT NULL DEFAULT x'',
    deadline            INTEGER,
    max_deadline        INTEGER,
    daily_cost          INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (workspace_id, build_number)
);
CREATE INDEX workspace_builds_created ON workspace_builds(created_at);

CREATE TABLE workspace_build_parameters (
    build_id TEXT NOT NULL REFERENCES workspace_builds(id),
    position INTEGER NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (build_id, position)
);

-- Resources a job produced. Agents (with their apps and scripts) and metadata are kept as JSON
-- documents in Coder's shapes, with their ids fixed when the job completes.
CREATE TABLE workspace_resources (
    id                   TEXT PRIMARY KEY,
    job_id               TEXT NOT NULL REFERENCES provisioner_jobs(id),
    created_at           INTEGER NOT NULL,
    workspace_transition TEXT NOT NULL,
    type                 TEXT NOT NULL,
    name                 TEXT NOT NULL,
    hide                 INTEGER NOT NULL DEFAULT 0,
    icon                 TEXT NOT NULL DEFAULT '',
    daily_cost           INTEGER NOT NULL DEFAULT 0,
    metadata             TEXT NOT NULL DEFAULT '[]',
    agents               TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX workspace_resources_job ON workspace_resources(job_id, name);

-- migration 2
-- The workers that take jobs. A kiln server registers its built-in workers under its own id
-- (kept in its data folder), so after a restart it knows which unfinished jobs were its own.
CREATE TABLE provisioner_daemons (
    id           TEXT PRIMARY KEY,
    server_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (server_id, name)
);

-- migration 3
-- The provisioner a template version was imported with, as the client chose it (Coder's
-- clients send "terraform"; kiln runs the archive's kiln.json either way).
ALTER TABLE template_versions ADD COLUMN provisioner TEXT NOT NULL DEFAULT 'echo';

-- migration 4
-- A stop build may carry the start build to queue when it succeeds (Coder's restart): JSON of
-- store::FollowUp, queued in the same transaction as the stop's completion.
ALTER TABLE workspace_builds ADD COLUMN on_success TEXT;

-- migration 5
-- What a build's job did and when: a row per stage and per step, in order, written with the
-- job's end.
CREATE TABLE provisioner_job_timings (
    job_id     TEXT NOT NULL REFERENCES provisioner_jobs(id),
    position   INTEGER NOT NULL,
    stage      TEXT NOT NULL,
    source     TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, position)
);

-- migration 6
-- External provisioner daemons: the keys they authenticate with (the secret kept only as its
-- SHA-256, like API keys), and what a daemon registered with (its key, tags and version).
-- Jobs carry the tags a daemon must have to take them (JSON object, Coder's tag rules).
CREATE TABLE provisioner_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL,
    hashed_secret   BLOB NOT NULL UNIQUE,
    tags            TEXT NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX provisioner_keys_organization_name ON provisioner_keys(organization_id, lower(name));
ALTER TABLE provisioner_daemons ADD COLUMN key_id TEXT;
ALTER TABLE provisioner_daemons ADD COLUMN organization_id TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioner_daemons ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE provisioner_daemons ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioner_jobs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
-- The daemons listing: each daemon's current and last job.
CREATE INDEX provisioner_jobs_worker ON provisioner_jobs(worker_id, completed_at);

-- migration 7
-- Indexes for a database that holds a year of builds: the status page's change marker reads
-- the latest update of each table (instead of counting every row), and the queue and the
-- recent builds are read from indexes, never by scanning whole tables.
CREATE INDEX provisioner_jobs_updated ON provisioner_jobs(updated_at);
CREATE INDEX workspace_builds_updated ON workspace_builds(updated_at);
CREATE INDEX workspaces_updated ON workspaces(updated_at);
-- The template version of a queued import job (the status page's queue).
CREATE INDEX template_versions_job ON template_versions(job_id);

-- migration 8
-- The number of live workspaces, kept by triggers in the writes that change it, so that the
-- count beside a page of everyone's workspaces is one row however many there are.
CREATE TABLE live_workspaces (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT INTO live_workspaces (id, count) SELECT 1, count(*) FROM workspaces WHERE deleted = 0;
CREATE TRIGGER live_workspaces_insert AFTER INSERT ON workspaces WHEN NEW.deleted = 0
BEGIN
    UPDATE live_workspaces SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER live_workspaces_delete AFTER DELETE ON workspaces WHEN OLD.deleted = 0
BEGIN
    UPDATE live_workspaces SET count = count - 1 WHERE id = 1;
END;
CREATE TRIGGER live_workspaces_update AFTER UPDATE OF deleted ON workspaces
WHEN (OLD.deleted = 0) <> (NEW.deleted = 0)
BEGIN
    UPDATE live_workspaces SET count = count + CASE WHEN NEW.deleted = 0 THEN 1 ELSE -1 END
    WHERE id = 1;
END;

-- migration 9
-- The number of pending jobs, kept by triggers in the writes that queue, take, release, cancel
-- or end a job: a job's place in the queue is this count less the pending jobs behind it, so
-- ranking the newest jobs reads a row and a few index entries however long the queue is.
CREATE TABLE pending_jobs (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT INTO pending_jobs (id, count) SELECT 1, count(*) FROM provisioner_jobs
    WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL;
CREATE TRIGGER pending_jobs_insert AFTER INSERT ON provisioner_jobs
WHEN NEW.started_at IS NULL AND NEW.completed_at IS NULL AND NEW.canceled_at IS NULL
BEGIN
    UPDATE pending_jobs SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER pending_jobs_delete AFTER DELETE ON provisioner_jobs
WHEN OLD.started_at IS NULL AND OLD.completed_at IS NULL AND OLD.canceled_at IS NULL
BEGIN
    UPDATE pending_jobs SET count = count - 1 WHERE id = 1;
END;
CREATE TRIGGER pending_jobs_update AFTER UPDATE OF started_at, completed_at, canceled_at
ON provisioner_jobs
WHEN (OLD.started_at IS NULL AND OLD.completed_at IS NULL AND OLD.canceled_at IS NULL)
  <> (NEW.started_at IS NULL AND NEW.completed_at IS NULL AND NEW.canceled_at IS NULL)
BEGIN
    UPDATE pending_jobs SET count = count +
        CASE WHEN NEW.started_at IS NULL AND NEW.completed_at IS NULL AND NEW.canceled_at IS NULL
        THEN 1 ELSE -1 END
    WHERE id = 1;
END;

-- migration 10
-- Named tokens (`coder tokens`): how long each was made to last and its scope, and one name
-- per user (the unnamed keys of POST /users/{user}/keys aside).
ALTER TABLE api_keys ADD COLUMN lifetime_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'all';
CREATE UNIQUE INDEX api_keys_token_name ON api_keys(user_id, token_name)
    WHERE login_type = 'token' AND token_name <> '';
-- A template version may be archived (hidden from the versions list, not built from).
ALTER TABLE template_versions ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;

-- migration 11
-- The queue by tag set: a taker reads the pending jobs' distinct tag sets and the oldest job of
-- each it can take, a probe each, however many jobs it cannot take stand ahead.
CREATE INDEX provisioner_jobs_pending_tags ON provisioner_jobs(tags, seq)
    WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL;
-- Uploads are deduplicated per uploader (as Coder's GetFileByHashAndCreator): the same bytes
-- uploaded by another user are a file of their own, so an upload never tells a user what
-- others uploaded. SQLite cannot drop a column's UNIQUE: the table is rebuilt.
CREATE TABLE files_by_uploader (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    mimetype   TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    UNIQUE (hash, created_by)
);
INSERT INTO files_by_uploader (id, hash, mimetype, data, created_by, created_at)
    SELECT id, hash, mimetype, data, created_by, created_at FROM files;
DROP TABLE files;
ALTER TABLE files_by_uploader RENAME TO files;

-- migration 12
-- A job's log past its cap (`--max-job-log-bytes`) keeps its head, one marker line and its
-- latest lines (`domain::log_budget`): the marker's line, what the lines after it cost, and
-- what was dropped (lines, bytes of output) for the marker to say.
ALTER TABLE provisioner_jobs ADD COLUMN logs_marker_id INTEGER;
ALTER TABLE provisioner_jobs ADD COLUMN logs_tail_length INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisioner_jobs ADD COLUMN logs_dropped_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisioner_jobs ADD COLUMN logs_dropped_bytes INTEGER NOT NULL DEFAULT 0;
