-- depends: 0007_keyset_indexes

-- Forwarding to a team PostgreSQL ([forward.postgres], aod/forward/). `machine_id` names this
-- file's rows in the team store: random, created once, and kept by `aod db restore` (unlike
-- db_epoch), so a restored machine goes on upserting the same rows instead of appearing twice.
INSERT INTO meta (key, value) VALUES ('machine_id', lower(hex(randomblob(16))));

-- The forwarder's durable cursor: every change_log row up to `seq` (and the rows it names) is
-- committed in the PostgreSQL named by `target` (its dsn without the password). A row exists
-- only while forwarding is configured: retention keeps every change_log row above it, and every
-- event such a row names, until it moves (aod/storage/retention.py).
CREATE TABLE forward_cursor (
    target       TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    forwarded_at TEXT
) WITHOUT ROWID;
