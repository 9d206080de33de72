-- The whole schema of DESIGN §2: entities, indexes for the API's queries, and the change_log
-- triggers that feed CDC. Timestamps are RFC 3339 UTC text (fixed width per column, so they
-- sort lexically). Must run on the stdlib sqlite3 of Python 3.11 (SQLite 3.37): no jsonb,
-- no RETURNING in triggers, no STRICT-only syntax.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    origin_url  TEXT,
    next_session_n INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    archived_at TEXT
);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT REFERENCES projects(id),
    agent              TEXT NOT NULL,
    agent_session_id   TEXT,
    status             TEXT NOT NULL DEFAULT 'idle',
    activity           TEXT NOT NULL DEFAULT 'idle',
    activity_at        TEXT,
    error              TEXT,
    is_alive           INTEGER,
    termination_reason TEXT,
    runtime            TEXT,
    runtime_handle     TEXT,
    pid                INTEGER,
    workspace_path     TEXT,
    branch             TEXT,
    title              TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    last_event_at      TEXT,
    ended_at           TEXT
);
CREATE INDEX sessions_by_status ON sessions(status, updated_at, id);
CREATE INDEX sessions_by_updated ON sessions(updated_at, id);
CREATE INDEX sessions_by_project ON sessions(project_id, updated_at, id);
CREATE INDEX sessions_by_agent_session ON sessions(agent, agent_session_id);

-- Every agent session id a session was ever known by: /clear and --resume hand a session a new
-- agent id, and late events for the old id must still land on the same aod session.
CREATE TABLE session_aliases (
    agent            TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions(id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (agent, agent_session_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,
    session_id    TEXT REFERENCES sessions(id),
    agent         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    tool_name     TEXT,
    tool_use_id   TEXT,
    occurred_at   TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    duration_ms   INTEGER,
    ok            INTEGER,
    content_key   TEXT,
    payload       TEXT NOT NULL,
    payload_bytes INTEGER NOT NULL,
    trimmed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_by_session ON events(session_id, id);
CREATE INDEX events_by_kind_time ON events(kind, occurred_at);
CREATE INDEX events_by_tool_time ON events(tool_name, occurred_at) WHERE tool_name IS NOT NULL;
CREATE INDEX events_by_time ON events(occurred_at);
-- Dedup of re-fired hooks (same content within ingest.dedup_window) and Pre/PostToolUse pairing.
CREATE INDEX events_by_content_key ON events(content_key, received_at) WHERE content_key IS NOT NULL;
CREATE INDEX events_by_tool_use ON events(tool_use_id) WHERE tool_use_id IS NOT NULL;

CREATE TABLE prs (
    url             TEXT PRIMARY KEY,
    session_id      TEXT REFERENCES sessions(id),
    number          INTEGER,
    state           TEXT,
    draft           INTEGER,
    review_decision TEXT,
    mergeability    TEXT,
    ci_state        TEXT,
    head_sha        TEXT,
    title           TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX prs_by_session ON prs(session_id);

CREATE TABLE pr_checks (
    pr_url     TEXT NOT NULL REFERENCES prs(url),
    name       TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    status     TEXT NOT NULL,
    url        TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pr_url, name, commit_sha)
) WITHOUT ROWID;
-- The CI brake reads the last runs of one check across commits.
CREATE INDEX pr_checks_by_name ON pr_checks(pr_url, name, created_at);

CREATE TABLE pr_comments (
    pr_url     TEXT NOT NULL REFERENCES prs(url),
    comment_id TEXT NOT NULL,
    author     TEXT,
    path       TEXT,
    line       INTEGER,
    body       TEXT,
    resolved   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (pr_url, comment_id)
) WITHOUT ROWID;

CREATE TABLE reaction_trackers (
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    reaction       TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    first_at       TEXT NOT NULL,
    last_at        TEXT,
    last_signature TEXT,
    escalated_at   TEXT,
    resolved_at    TEXT,
    PRIMARY KEY (session_id, reaction)
) WITHOUT ROWID;

CREATE TABLE escalations (
    id         INTEGER PRIMARY KEY,
    session_id TEXT REFERENCES sessions(id),
    reaction   TEXT NOT NULL,
    priority   TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    acked_at   TEXT
);
CREATE INDEX escalations_by_session ON escalations(session_id, id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    escalation_id   INTEGER NOT NULL REFERENCES escalations(id),
    notifier        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    UNIQUE (escalation_id, notifier)
);
CREATE INDEX deliveries_pending ON deliveries(next_attempt_at) WHERE status = 'pending';

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    error       TEXT NOT NULL,
    body        TEXT
);

CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    entity     TEXT NOT NULL,
    op         TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    session_id TEXT,
    project_id TEXT,
    data       TEXT NOT NULL
);
CREATE INDEX change_log_by_at ON change_log(at);
CREATE INDEX change_log_by_session ON change_log(session_id, seq);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Created once, here: a restored or recreated file gets a new epoch, so SSE cursors from the
-- old file are recognised as foreign.
INSERT INTO meta (key, value) VALUES ('db_epoch', lower(hex(randomblob(8))));
INSERT INTO meta (key, value) VALUES ('retention_floor', '0');

-- change_log: one view per entity defines the row a client sees (never a payload BLOB: an
-- event's payload can be 64 KiB, clients fetch it by id), and AFTER INSERT/UPDATE triggers copy
-- it. UPDATE triggers list the columns whose change a client must see; bookkeeping columns
-- (updated_at, last_event_at, activity_at) alone do not make a change.

CREATE VIEW cdc_sessions AS
SELECT id AS entity_id, id AS session_id, project_id, json_object(
    'id', id, 'project_id', project_id, 'agent', agent, 'agent_session_id', agent_session_id,
    'status', status, 'activity', activity, 'error', error, 'is_alive', is_alive,
    'termination_reason', termination_reason, 'runtime', runtime,
    'runtime_handle', runtime_handle, 'pid', pid, 'workspace_path', workspace_path,
    'branch', branch, 'title', title, 'created_at', created_at, 'updated_at', updated_at,
    'last_event_at', last_event_at, 'ended_at', ended_at) AS data
FROM sessions;

CREATE VIEW cdc_events AS
SELECT e.id AS entity_id, e.session_id, s.project_id, json_object(
    'id', e.id, 'uid', e.uid, 'session_id', e.session_id, 'agent', e.agent, 'kind', e.kind,
    'tool_name', e.tool_name, 'tool_use_id', e.tool_use_id, 'occurred_at', e.occurred_at,
    'duration_ms', e.duration_ms, 'ok', e.ok) AS data
FROM events e LEFT JOIN sessions s ON s.id = e.session_id;

CREATE VIEW cdc_prs AS
SELECT p.url AS entity_id, p.session_id, s.project_id, json_object(
    'url', p.url, 'session_id', p.session_id, 'number', p.number, 'state', p.state,
    'draft', p.draft, 'review_decision', p.review_decision, 'mergeability', p.mergeability,
    'ci_state', p.ci_state, 'head_sha', p.head_sha, 'title', p.title,
    'updated_at', p.updated_at) AS data
FROM prs p LEFT JOIN sessions s ON s.id = p.session_id;

-- A check's entity_id joins its key parts with a newline, which no URL, check name or sha holds.
CREATE VIEW cdc_pr_checks AS
SELECT c.pr_url || char(10) || c.name || char(10) || c.commit_sha AS entity_id,
    c.pr_url, c.name, c.commit_sha, p.session_id, s.project_id, json_object(
    'pr_url', c.pr_url, 'name', c.name, 'commit_sha', c.commit_sha, 'status', c.status,
    'url', c.url, 'session_id', p.session_id, 'created_at', c.created_at,
    'updated_at', c.updated_at) AS data
FROM pr_checks c LEFT JOIN prs p ON p.url = c.pr_url LEFT JOIN sessions s ON s.id = p.session_id;

CREATE VIEW cdc_escalations AS
SELECT e.id AS entity_id, e.session_id, s.project_id, json_object(
    'id', e.id, 'session_id', e.session_id, 'reaction', e.reaction, 'priority', e.priority,
    'message', e.message, 'created_at', e.created_at, 'acked_at', e.acked_at) AS data
FROM escalations e LEFT JOIN sessions s ON s.id = e.session_id;

CREATE TRIGGER sessions_cdc_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'session', 'insert', entity_id, session_id, project_id, data
    FROM cdc_sessions WHERE entity_id = NEW.id;
END;

CREATE TRIGGER sessions_cdc_update AFTER UPDATE ON sessions
WHEN OLD.project_id IS NOT NEW.project_id
  OR OLD.agent_session_id IS NOT NEW.agent_session_id
  OR OLD.status IS NOT NEW.status
  OR OLD.activity IS NOT NEW.activity
  OR OLD.error IS NOT NEW.error
  OR OLD.is_alive IS NOT NEW.is_alive
  OR OLD.termination_reason IS NOT NEW.termination_reason
  OR OLD.runtime IS NOT NEW.runtime
  OR OLD.runtime_handle IS NOT NEW.runtime_handle
  OR OLD.pid IS NOT NEW.pid
  OR OLD.workspace_path IS NOT NEW.workspace_path
  OR OLD.branch IS NOT NEW.branch
  OR OLD.title IS NOT NEW.title
  OR OLD.ended_at IS NOT NEW.ended_at
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'session', 'update', entity_id, session_id, project_id, data
    FROM cdc_sessions WHERE entity_id = NEW.id;
END;

CREATE TRIGGER events_cdc_insert AFTER INSERT ON events BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'event', 'insert', entity_id, session_id, project_id, data
    FROM cdc_events WHERE entity_id = NEW.id;
END;

CREATE TRIGGER events_cdc_update AFTER UPDATE ON events
WHEN OLD.session_id IS NOT NEW.session_id
  OR OLD.kind IS NOT NEW.kind
  OR OLD.tool_name IS NOT NEW.tool_name
  OR OLD.duration_ms IS NOT NEW.duration_ms
  OR OLD.ok IS NOT NEW.ok
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'event', 'update', entity_id, session_id, project_id, data
    FROM cdc_events WHERE entity_id = NEW.id;
END;

CREATE TRIGGER prs_cdc_insert AFTER INSERT ON prs BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'pr', 'insert', entity_id, session_id, project_id, data
    FROM cdc_prs WHERE entity_id = NEW.url;
END;

CREATE TRIGGER prs_cdc_update AFTER UPDATE ON prs
WHEN OLD.session_id IS NOT NEW.session_id
  OR OLD.number IS NOT NEW.number
  OR OLD.state IS NOT NEW.state
  OR OLD.draft IS NOT NEW.draft
  OR OLD.review_decision IS NOT NEW.review_decision
  OR OLD.mergeability IS NOT NEW.mergeability
  OR OLD.ci_state IS NOT NEW.ci_state
  OR OLD.head_sha IS NOT NEW.head_sha
  OR OLD.title IS NOT NEW.title
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'pr', 'update', entity_id, session_id, project_id, data
    FROM cdc_prs WHERE entity_id = NEW.url;
END;

CREATE TRIGGER pr_checks_cdc_insert AFTER INSERT ON pr_checks BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'check', 'insert', entity_id, session_id, project_id, data FROM cdc_pr_checks
    WHERE pr_url = NEW.pr_url AND name = NEW.name AND commit_sha = NEW.commit_sha;
END;

CREATE TRIGGER pr_checks_cdc_update AFTER UPDATE ON pr_checks
WHEN OLD.status IS NOT NEW.status OR OLD.url IS NOT NEW.url
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'check', 'update', entity_id, session_id, project_id, data FROM cdc_pr_checks
    WHERE pr_url = NEW.pr_url AND name = NEW.name AND commit_sha = NEW.commit_sha;
END;

CREATE TRIGGER escalations_cdc_insert AFTER INSERT ON escalations BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'escalation', 'insert', entity_id, session_id, project_id, data
    FROM cdc_escalations WHERE entity_id = NEW.id;
END;

CREATE TRIGGER escalations_cdc_update AFTER UPDATE ON escalations
WHEN OLD.priority IS NOT NEW.priority
  OR OLD.message IS NOT NEW.message
  OR OLD.acked_at IS NOT NEW.acked_at
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'escalation', 'update', entity_id, session_id, project_id, data
    FROM cdc_escalations WHERE entity_id = NEW.id;
END;
