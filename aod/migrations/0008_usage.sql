-- depends: 0007_keyset_indexes

-- Tokens and cost from Claude Code's transcripts (issue 17). One row per assistant message: the
-- same message is written to a transcript several times (once per content block), with the same
-- message id and request id, so that pair is the key (ccusage deduplicates by it too). A line
-- that lacks either gets a key made from its content hash, so reading it twice still counts once.
-- `session_id` is the aod session (a subagent's sidechain lines name their parent's agent session
-- id: they count for the parent and are marked `is_sidechain`); NULL while no aod session is known
-- for the agent session id. `cost_usd` NULL means the model has no price: counted, never 0.
CREATE TABLE usage (
    id                          INTEGER PRIMARY KEY,
    message_id                  TEXT NOT NULL,
    request_id                  TEXT NOT NULL,
    session_id                  TEXT REFERENCES sessions(id),
    agent_session_id            TEXT,
    model                       TEXT NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_creation_1h_tokens    INTEGER NOT NULL,
    cache_read_input_tokens     INTEGER NOT NULL,
    cost_usd                    REAL,
    occurred_at                 TEXT NOT NULL,
    is_sidechain                INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, request_id)
);
-- Reports read a time window; a session's page reads its rows.
CREATE INDEX usage_by_time ON usage(occurred_at);
CREATE INDEX usage_by_session ON usage(session_id, occurred_at);

-- How far each transcript was read: stored in the transaction that stores the rows read, so a
-- restart (even after SIGKILL) neither counts a line twice nor misses one. `inode` and
-- `fingerprint` (a hash of the file's first bytes) tell a rewritten or rotated file from an
-- appended one.
CREATE TABLE transcript_offsets (
    path        TEXT PRIMARY KEY,
    session_id  TEXT REFERENCES sessions(id),
    offset      INTEGER NOT NULL,
    inode       INTEGER,
    fingerprint TEXT,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;

-- A session's totals, kept in the transaction that inserts its usage rows. A table of their own
-- rather than columns of `sessions`: the session writers own that row, and these counters change
-- with every assistant message while its status does not.
CREATE TABLE session_usage (
    session_id                  TEXT PRIMARY KEY REFERENCES sessions(id),
    messages                    INTEGER NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd                    REAL NOT NULL DEFAULT 0,
    unpriced_messages           INTEGER NOT NULL DEFAULT 0,
    sidechain_messages          INTEGER NOT NULL DEFAULT 0,
    sidechain_cost_usd          REAL NOT NULL DEFAULT 0,
    models                      TEXT NOT NULL DEFAULT '{}',
    updated_at                  TEXT NOT NULL
) WITHOUT ROWID;

-- The stream's `usage` entity: a session's totals as they change.
CREATE VIEW cdc_session_usage AS
SELECT u.session_id AS entity_id, u.session_id, s.project_id, json_object(
    'session_id', u.session_id, 'messages', u.messages, 'input_tokens', u.input_tokens,
    'output_tokens', u.output_tokens, 'cache_creation_input_tokens', u.cache_creation_input_tokens,
    'cache_read_input_tokens', u.cache_read_input_tokens, 'cost_usd', u.cost_usd,
    'unpriced_messages', u.unpriced_messages, 'sidechain_messages', u.sidechain_messages,
    'sidechain_cost_usd', u.sidechain_cost_usd, 'models', json(u.models),
    'updated_at', u.updated_at) AS data
FROM session_usage u LEFT JOIN sessions s ON s.id = u.session_id;

CREATE TRIGGER session_usage_cdc_insert AFTER INSERT ON session_usage BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'usage', 'insert', entity_id, session_id, project_id, data
    FROM cdc_session_usage WHERE entity_id = NEW.session_id;
END;

CREATE TRIGGER session_usage_cdc_update AFTER UPDATE ON session_usage
WHEN OLD.messages IS NOT NEW.messages
  OR OLD.cost_usd IS NOT NEW.cost_usd
  OR OLD.unpriced_messages IS NOT NEW.unpriced_messages
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'usage', 'update', entity_id, session_id, project_id, data
    FROM cdc_session_usage WHERE entity_id = NEW.session_id;
END;
