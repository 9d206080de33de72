-- depends: 0006_events_for_stats

-- No query reads change_log by `at` (retention walks the primary key: retention.py's `+at`) or
-- by session (the stream, the reactions and the metrics read seq ranges of the primary key), yet
-- every trigger row paid a write into each of these indexes.
DROP INDEX change_log_by_at;
DROP INDEX change_log_by_session;

-- GET /v1/events?kind= / ?tool= pages by id (keyset): an index ordered by (kind, id) reads one
-- page, where (kind, occurred_at) made SQLite sort every event of that kind to return it. They
-- replace the time-ordered ones, which no other query uses, so an insert costs no more.
CREATE INDEX events_by_kind ON events(kind, id);
CREATE INDEX events_by_tool ON events(tool_name, id) WHERE tool_name IS NOT NULL;
DROP INDEX events_by_kind_time;
DROP INDEX events_by_tool_time;
