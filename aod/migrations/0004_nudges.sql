-- depends: 0001_schema

-- The outbox of send-to-agent nudges: a nudge is recorded in the transaction that decides it
-- (with its reaction_trackers row) and typed into the agent's pane afterwards. A restart finds
-- every nudge that was decided but not yet sent still `pending`, and sends it once.
-- UNIQUE (session, reaction, signature) makes "one nudge per signature" a property of the file,
-- not of the code that writes it. `typing_since` is set while the text is being typed: a row
-- found with it after a restart was cut off mid-send, and the pane tells whether the text got
-- in (each nudge ends with a marker naming its id). Not streamed: nudges are not a CDC entity.
CREATE TABLE nudges (
    id              INTEGER PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    reaction        TEXT NOT NULL,
    signature       TEXT NOT NULL,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    typing_since    TEXT,
    sent_at         TEXT,
    UNIQUE (session_id, reaction, signature)
);
CREATE INDEX nudges_pending ON nudges(next_attempt_at) WHERE status = 'pending';
CREATE INDEX nudges_by_session ON nudges(session_id, reaction, id);

-- The reaction engine's candidates: trackers whose timer may still fall due.
CREATE INDEX reaction_trackers_waiting ON reaction_trackers(session_id)
    WHERE resolved_at IS NULL AND escalated_at IS NULL;
