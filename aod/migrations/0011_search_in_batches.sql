-- depends: 0010_search

-- The full-text index follows the events in batches instead of in each ingest transaction.
-- FTS5 writes a new index segment at every commit, so indexing in the ingest's own small group
-- commits cost the lean path ~22 µs of CPU per event, a quarter of its throughput
-- (bench/search.py); the search indexer job (aod/lookback/indexer.py) indexes the events after
-- `meta.search_indexed_through` in batches of a few hundred per writer transaction, about half
-- a second after the commits that stored them, and moves that cursor in the same transaction.
-- A search sees an event once it is indexed; every event up to the cursor is.
-- The text an event is found by is the same as 0010's.
DROP TRIGGER events_search_insert;
DROP TRIGGER events_search_delete;
DROP TRIGGER events_search_unindex;
DROP TRIGGER events_search_reindex;

-- 0010's triggers indexed every event stored so far.
INSERT INTO meta (key, value) SELECT 'search_indexed_through', coalesce(max(id), 0) FROM events;

-- The index's content is the indexed events only: FTS5's integrity-check (and so `aod db check
-- --full`) compares the index with every row of its content, and an event waiting for its batch
-- is not in the index yet. The text itself is as 0010 computes it.
DROP VIEW event_search_text;
CREATE VIEW event_search_text AS
SELECT id, body FROM (
    SELECT id, rtrim(
        coalesce((payload ->> '$.prompt') || char(10), '')
        || coalesce((payload ->> '$.message') || char(10), '')
        || coalesce((payload ->> '$.error') || char(10), '')
        || coalesce((payload ->> '$.tool_response.error') || char(10), '')
        || coalesce((payload ->> '$.tool_input.command') || char(10), '')
        || coalesce((payload ->> '$.tool_input.description') || char(10), '')
        || coalesce((payload ->> '$.tool_input.file_path') || char(10), '')
        || coalesce((payload ->> '$.tool_input.notebook_path') || char(10), '')
        || coalesce((payload ->> '$.tool_input.path') || char(10), '')
        || coalesce((payload ->> '$.tool_input.pattern') || char(10), '')
        || coalesce((payload ->> '$.tool_input.url') || char(10), '')
        || coalesce((payload ->> '$.tool_input.query') || char(10), ''),
        char(10)) AS body
    FROM events
    WHERE id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_through') AND json_valid(payload)
) WHERE body != '';

-- Made again with prefix indexes of 2 and 3 characters: a short prefix query ("w1*") read the
-- doclists of every term it expands to, 180 ms at 1M events, and now reads one (0.4 ms).
DROP TABLE event_search;
CREATE VIRTUAL TABLE event_search USING fts5(
    body, content = 'event_search_text', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
INSERT INTO event_search (event_search) VALUES ('rebuild');

-- Only an indexed event has index rows to take out: telling an external-content index to delete
-- a row it does not hold corrupts it.
CREATE TRIGGER events_search_delete BEFORE DELETE ON events
WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_through')
BEGIN
    INSERT INTO event_search (event_search, rowid, body)
    SELECT 'delete', id, body FROM event_search_text WHERE id = old.id;
END;

-- A new event's id is the largest id + 1 (no AUTOINCREMENT): once the newest events are gone
-- (retention emptying the table), ids below the cursor come again, so the cursor comes down to
-- the largest id left, in the same transaction, before any new event can take one.
CREATE TRIGGER events_search_rewind AFTER DELETE ON events
WHEN old.id > coalesce((SELECT max(id) FROM events), 0)
BEGIN
    UPDATE meta SET value = CAST(coalesce((SELECT max(id) FROM events), 0) AS TEXT)
    WHERE key = 'search_indexed_through' AND CAST(value AS INTEGER) > coalesce((SELECT max(id) FROM events), 0);
END;

-- No code rewrites a payload today; should one, an indexed event's index rows follow.
CREATE TRIGGER events_search_unindex BEFORE UPDATE OF payload ON events
WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_through')
BEGIN
    INSERT INTO event_search (event_search, rowid, body)
    SELECT 'delete', id, body FROM event_search_text WHERE id = old.id;
END;

CREATE TRIGGER events_search_reindex AFTER UPDATE OF payload ON events
WHEN new.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_through')
BEGIN
    INSERT INTO event_search (rowid, body) SELECT id, body FROM event_search_text WHERE id = new.id;
END;
