-- kiln's PostgreSQL schema. Applied by src/store/postgres/migrate.rs: each `-- migration N`
-- block runs once, in order, in one transaction holding an advisory lock (so servers starting
-- at once migrate once), recorded in kiln_schema. Never edit a block that has shipped.
-- Times are BIGINT microseconds since the Unix epoch (UTC), as in the SQLite schema.
-- IDs are UUID strings.

-- migration 1
CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    icon         TEXT NOT NULL DEFAULT '',
    is_default   BOOLEAN NOT NULL DEFAULT false,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    username        TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    hashed_password TEXT NOT NULL DEFAULT '',
    login_type      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active',
    -- Site roles as a space-separated list: '' (member), 'owner', 'template-admin'.
    roles           TEXT NOT NULL DEFAULT '',
    avatar_url      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
-- Emails and usernames compare without case.
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

-- An API key is `<id>-<secret>`; only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    hashed_secret BYTEA NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id),
    login_type    TEXT NOT NULL,
    token_name    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used     BIGINT NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- Uploaded template archives, content-addressed by SHA-256.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    mimetype   TEXT NOT NULL,
    data       BYTEA NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);

-- One queue for template imports and workspace builds. The status word is derived from
-- started_at / completed_at / canceled_at / error (src/model/status.rs), never stored.
CREATE TABLE provisioner_jobs (
    id              TEXT PRIMARY KEY,
    seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, -- the queue's FIFO key
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    started_at      BIGINT,
    completed_at    BIGINT,
    canceled_at     BIGINT,
    error           TEXT NOT NULL DEFAULT '',
    error_code      TEXT NOT NULL DEFAULT '',
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    initiator_id    TEXT NOT NULL REFERENCES users(id),
    file_id         TEXT NOT NULL REFERENCES files(id),
    type            TEXT NOT NULL, -- workspace_build | template_version_import
    input           TEXT NOT NULL, -- JSON: {"workspace_build_id": ...} or {"template_version_id": ...}
    worker_id       TEXT,
    log_level       TEXT NOT NULL DEFAULT 'info',
    logs_length     BIGINT NOT NULL DEFAULT 0,
    logs_overflowed BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX provisioner_jobs_pending ON provisioner_jobs(seq)
    WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL;
CREATE INDEX provisioner_jobs_running ON provisioner_jobs(updated_at)
    WHERE started_at IS NOT NULL AND completed_at IS NULL;

CREATE TABLE provisioner_job_logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES provisioner_jobs(id),
    created_at BIGINT NOT NULL,
    source     TEXT NOT NULL,
    level      TEXT NOT NULL,
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
    default_ttl_ms                   BIGINT NOT NULL DEFAULT 0,
    allow_user_cancel_workspace_jobs BOOLEAN NOT NULL DEFAULT true,
    created_by                       TEXT NOT NULL REFERENCES users(id),
    created_at                       BIGINT NOT NULL,
    updated_at                       BIGINT NOT NULL,
    deleted                          BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (organization_id, name)
);

CREATE TABLE template_versions (
    id              TEXT PRIMARY KEY,
    template_id     TEXT REFERENCES templates(id),
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL,
    message         TEXT NOT NULL DEFAULT '',
    readme          TEXT NOT NULL DEFAULT '',
    job_id          TEXT NOT NULL UNIQUE REFERENCES provisioner_jobs(id),
    file_id         TEXT NOT NULL REFERENCES files(id),
    manifest        TEXT,
    created_by      TEXT NOT NULL REFERENCES users(id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- Insertion order, the tie-break of versions created in the same microsecond.
    pos             BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX template_versions_template ON template_versions(template_id, created_at);

CREATE TABLE workspaces (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations(id),
    owner_id           TEXT NOT NULL REFERENCES users(id),
    template_id        TEXT NOT NULL REFERENCES templates(id),
    name               TEXT NOT NULL,
    ttl_ms             BIGINT,
    autostart_schedule TEXT,
    automatic_updates  TEXT NOT NULL DEFAULT 'never',
    deleted            BOOLEAN NOT NULL DEFAULT false,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    last_used_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces(owner_id, lower(name)) WHERE NOT deleted;

CREATE TABLE workspace_builds (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id),
    template_version_id TEXT NOT NULL REFERENCES template_versions(id),
    build_number        BIGINT NOT NULL,
    transition          TEXT NOT NULL,
    initiator_id        TEXT NOT NULL REFERENCES users(id),
    job_id              TEXT NOT NULL UNIQUE REFERENCES provisioner_jobs(id),
    reason              TEXT NOT NULL DEFAULT 'initiator',
    orphan              BOOLEAN NOT NULL DEFAULT false,
    state               BYTEA NOT NULL DEFAULT ''::bytea,
    deadline            BIGINT,
    max_deadline        BIGINT,
    daily_cost          BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (workspace_id, build_number)
);
CREATE INDEX workspace_builds_created ON workspace_builds(created_at);

CREATE TABLE workspace_build_parameters (
    build_id TEXT NOT NULL REFERENCES workspace_builds(id),
    position BIGINT NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (build_id, position)
);

CREATE TABLE workspace_resources (
    id                   TEXT PRIMARY KEY,
    job_id               TEXT NOT NULL REFERENCES provisioner_jobs(id),
    created_at           BIGINT NOT NULL,
    workspace_transition TEXT NOT NULL,
    type                 TEXT NOT NULL,
    name                 TEXT NOT NULL,
    hide                 BOOLEAN NOT NULL DEFAULT false,
    icon                 TEXT NOT NULL DEFAULT '',
    daily_cost           BIGINT NOT NULL DEFAULT 0,
    metadata             TEXT NOT NULL DEFAULT '[]',
    agents               TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX workspace_resources_job ON workspace_resources(job_id, name);

CREATE TABLE provisioner_daemons (
    id           TEXT PRIMARY KEY,
    server_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    UNIQUE (server_id, name)
);

-- migration 2
-- The provisioner a template version was imported with, as the client chose it (Coder's
-- clients send "terraform"; kiln runs the archive's kiln.json either way).
ALTER TABLE template_versions ADD COLUMN provisioner TEXT NOT NULL DEFAULT 'echo';

-- migration 3
-- A stop build may carry the start build to queue when it succeeds (Coder's restart): JSON of
-- store::FollowUp, queued in the same transaction as the stop's completion.
ALTER TABLE workspace_builds ADD COLUMN on_success TEXT;

-- migration 4
-- What a build's job did and when: a row per stage and per step, in order, written with the
-- job's end.
CREATE TABLE provisioner_job_timings (
    job_id     TEXT NOT NULL REFERENCES provisioner_jobs(id),
    position   BIGINT NOT NULL,
    stage      TEXT NOT NULL,
    source     TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT NOT NULL,
    PRIMARY KEY (job_id, position)
);

-- migration 5
-- External provisioner daemons: the keys they authenticate with (the secret kept only as its
-- SHA-256, like API keys), and what a daemon registered with (its key, tags and version).
-- Jobs carry the tags a daemon must have to take them (JSON object, Coder's tag rules).
CREATE TABLE provisioner_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL,
    hashed_secret   BYTEA NOT NULL UNIQUE,
    tags            TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX provisioner_keys_organization_name ON provisioner_keys(organization_id, lower(name));
ALTER TABLE provisioner_daemons ADD COLUMN key_id TEXT;
ALTER TABLE provisioner_daemons ADD COLUMN organization_id TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioner_daemons ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE provisioner_daemons ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioner_jobs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
-- The daemons listing: each daemon's current and last job.
CREATE INDEX provisioner_jobs_worker ON provisioner_jobs(worker_id, completed_at);

-- migration 6
-- Indexes for a database that holds a year of builds: the status page's change marker reads
-- the latest update of each table (instead of counting every row), and the queue and the
-- recent builds are read from indexes, never by scanning whole tables.
CREATE INDEX provisioner_jobs_updated ON provisioner_jobs(updated_at);
CREATE INDEX workspace_builds_updated ON workspace_builds(updated_at);
CREATE INDEX workspaces_updated ON workspaces(updated_at);
-- The template version of a queued import job (the status page's queue).
CREATE INDEX template_versions_job ON template_versions(job_id);

-- migration 7
-- A page of everyone's workspaces (by owner name, then name) is read along the users' name
-- index in that order, and stops after the users it covers.
CREATE INDEX users_username_order ON users ((lower(username) COLLATE "C"));

-- migration 8
-- The number of live workspaces, kept by a trigger in the writes that change it, so that the
-- count beside a page of everyone's workspaces is one row however many there are.
CREATE TABLE live_workspaces (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count BIGINT NOT NULL
);
INSERT INTO live_workspaces (id, count) SELECT 1, count(*) FROM workspaces WHERE NOT deleted;
CREATE FUNCTION live_workspaces_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND NOT NEW.deleted THEN
        delta := delta + 1;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') AND NOT OLD.deleted THEN
        delta := delta - 1;
    END IF;
    IF delta <> 0 THEN
        UPDATE live_workspaces SET count = count + delta WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER live_workspaces_change AFTER INSERT OR DELETE OR UPDATE OF deleted ON workspaces
    FOR EACH ROW EXECUTE FUNCTION live_workspaces_change();

-- migration 9
-- Named tokens (`coder tokens`): how long each was made to last and its scope, and one name
-- per user (the unnamed keys of POST /users/{user}/keys aside).
ALTER TABLE api_keys ADD COLUMN lifetime_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'all';
CREATE UNIQUE INDEX api_keys_token_name ON api_keys (user_id, token_name)
    WHERE login_type = 'token' AND token_name <> '';
-- A template version may be archived (hidden from the versions list, not built from).
ALTER TABLE template_versions ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;

-- migration 10
-- The queue by tag set: a taker reads the pending jobs' distinct tag sets and the oldest job of
-- each it can take, a probe each, however many jobs it cannot take stand ahead.
CREATE INDEX provisioner_jobs_pending_tags ON provisioner_jobs (tags, seq)
    WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL;
-- Uploads are deduplicated per uploader (as Coder's GetFileByHashAndCreator): the same bytes
-- uploaded by another user are a file of their own, so an upload never tells a user what
-- others uploaded.
ALTER TABLE files DROP CONSTRAINT files_hash_key;
CREATE UNIQUE INDEX files_hash_creator ON files (hash, created_by);

-- migration 11
-- A job's log past its cap (`--max-job-log-bytes`) keeps its head, one marker line and its
-- latest lines (`domain::log_budget`): the marker's line, what the lines after it cost, and
-- what was dropped (lines, bytes of output) for the marker to say.
ALTER TABLE provisioner_jobs ADD COLUMN logs_marker_id BIGINT;
ALTER TABLE provisioner_jobs ADD COLUMN logs_tail_length BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provisioner_jobs ADD COLUMN logs_dropped_lines BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provisioner_jobs ADD COLUMN logs_dropped_bytes BIGINT NOT NULL DEFAULT 0;
