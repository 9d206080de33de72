-- depends: 0009_forward

-- Full-text search over what a person looks for in a session (issue 20): prompts, tool commands
-- and file paths, error messages, notification texts. The index is external-content: the text is
-- not stored twice, `event_search_text` computes it from the payload (read again for the hits'
-- snippets), and the triggers keep the index in step with `events` in the writer's own
-- transaction, so a committed event is searchable at once and a deleted one (retention) is gone
-- from the index in the same commit. An event with none of these texts has no index row.
-- The view is the one definition of an event's text: the triggers read it too, so what goes in is
-- exactly what a delete takes out (an external-content index must be told the old text).
-- `json_valid` first: a row that is not JSON (none is written so) must not fail its insert.
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
    FROM events WHERE json_valid(payload)
) WHERE body != '';

CREATE VIRTUAL TABLE event_search USING fts5(
    body, content = 'event_search_text', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_search (rowid, body) SELECT id, body FROM event_search_text WHERE id = new.id;
END;

CREATE TRIGGER events_search_delete BEFORE DELETE ON events BEGIN
    INSERT INTO event_search (event_search, rowid, body)
    SELECT 'delete', id, body FROM event_search_text WHERE id = old.id;
END;

-- No code rewrites a payload today; should one, the index follows.
CREATE TRIGGER events_search_unindex BEFORE UPDATE OF payload ON events BEGIN
    INSERT INTO event_search (event_search, rowid, body)
    SELECT 'delete', id, body FROM event_search_text WHERE id = old.id;
END;

CREATE TRIGGER events_search_reindex AFTER UPDATE OF payload ON events BEGIN
    INSERT INTO event_search (rowid, body) SELECT id, body FROM event_search_text WHERE id = new.id;
END;

-- The events stored before this migration.
INSERT INTO event_search (event_search) VALUES ('rebuild');
