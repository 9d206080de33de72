"""Every migration applies to a fresh file; every table, index and CDC trigger of DESIGN §2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import apsw
import orjson
import pytest
from yoyo.migrations import read_sql_migration

from aod.storage.migrate import migrate, migration_ids, migrations_dir

# The contract of DESIGN §2, written out independently of the migrations it checks.
CONTRACT_COLUMNS = {
    "projects": {"id", "path", "name", "origin_url", "created_at", "archived_at"},
    "sessions": {
        "id", "project_id", "agent", "agent_session_id", "status", "activity", "is_alive",
        "termination_reason", "runtime", "runtime_handle", "pid", "workspace_path", "branch",
        "title", "created_at", "updated_at", "last_event_at", "ended_at",
    },
    "events": {
        "id", "uid", "session_id", "agent", "kind", "tool_name", "tool_use_id", "occurred_at",
        "received_at", "duration_ms", "ok", "payload", "payload_bytes", "trimmed",
    },
    "prs": {
        "url", "session_id", "number", "state", "draft", "review_decision", "mergeability",
        "ci_state", "head_sha", "title", "updated_at",
    },
    "pr_checks": {"pr_url", "name", "commit_sha", "status", "url", "created_at", "updated_at"},
    "pr_comments": {"pr_url", "comment_id", "author", "path", "line", "body", "resolved", "created_at"},
    "reaction_trackers": {
        "session_id", "reaction", "attempts", "first_at", "last_at", "last_signature",
        "escalated_at", "resolved_at",
    },
    "escalations": {"id", "session_id", "reaction", "priority", "message", "created_at", "acked_at"},
    "deliveries": {
        "id", "escalation_id", "notifier", "status", "attempts", "next_attempt_at", "last_error", "sent_at",
    },
    "dead_letters": {"id", "source", "received_at", "error", "body"},
    "change_log": {"seq", "at", "entity", "op", "entity_id", "session_id", "project_id", "data"},
    "meta": {"key", "value"},
}
CDC_TABLES = ["sessions", "events", "prs", "pr_checks", "escalations"]


def _columns(conn: apsw.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_fresh_file_applies_every_migration_once(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    first = migrate(db)
    assert list(first.applied) == migration_ids()
    assert first.schema_version == migration_ids()[-1]
    again = migrate(db)
    assert again.applied == ()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == migration_ids()[-1]


def test_schema_runs_on_stdlib_sqlite3(tmp_path: Path) -> None:
    # yoyo applies the files through the stdlib driver; this makes that explicit for the
    # SQLite version the interpreter ships (3.37+ for Python 3.11).
    c = sqlite3.connect(tmp_path / "stdlib.db")
    for path in sorted(migrations_dir().glob("*.sql")):
        c.executescript(path.read_text())
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(CONTRACT_COLUMNS) <= tables


@pytest.mark.parametrize("path", sorted(migrations_dir().glob("*.sql")), ids=lambda p: p.name)
def test_yoyo_splits_into_complete_statements(path: Path) -> None:
    _, _, statements = read_sql_migration(str(path))
    assert statements, "yoyo found no statements"
    for statement in statements:
        assert sqlite3.complete_statement(statement), statement[:200]
    # Independent split: accumulate text until SQLite's own tokenizer says a statement ended.
    sqlite_count, buffer = 0, ""
    for line in path.read_text().splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            sqlite_count += 1
            buffer = ""
    assert len(statements) == sqlite_count


def test_every_contract_table_and_column_exists(conn: apsw.Connection) -> None:
    for table, columns in CONTRACT_COLUMNS.items():
        missing = columns - _columns(conn, table)
        assert not missing, f"{table} lacks {sorted(missing)}"


def test_every_cdc_trigger_exists(conn: apsw.Connection) -> None:
    triggers = {r[0]: r[1] for r in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type='trigger'")}
    for table in CDC_TABLES:
        assert triggers.get(f"{table}_cdc_insert") == table
        assert triggers.get(f"{table}_cdc_update") == table


def test_db_epoch_is_created_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    migrate(a)
    migrate(b)
    read = lambda p: sqlite3.connect(p).execute("SELECT value FROM meta WHERE key='db_epoch'").fetchone()[0]  # noqa: E731
    epoch_a = read(a)
    migrate(a)
    assert read(a) == epoch_a
    assert read(b) != epoch_a
    assert len(epoch_a) == 16


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT id FROM sessions WHERE status = 'working' ORDER BY updated_at DESC, id DESC", "sessions_by_status"),
        ("SELECT id FROM sessions WHERE project_id = 'p' ORDER BY updated_at DESC", "sessions_by_project"),
        ("SELECT id FROM events WHERE session_id = 's' AND id > 5 ORDER BY id", "events_by_session"),
        ("SELECT id FROM events WHERE kind = 'PreToolUse' AND id < 5 ORDER BY id DESC", "events_by_kind"),
        ("SELECT id FROM events WHERE tool_name = 'Bash' AND id > 5 ORDER BY id", "events_by_tool"),
        ("SELECT seq FROM change_log WHERE seq > 10 ORDER BY seq", "INTEGER PRIMARY KEY"),
    ],
)
def test_api_queries_use_an_index(conn: apsw.Connection, sql: str, index: str) -> None:
    plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert index in plan, plan


# --- the triggers fire ------------------------------------------------------------------------

T0 = "2026-11-22T10:00:00.000000Z"
T1 = "2026-11-22T10:00:01.000000Z"


def _seed(conn: apsw.Connection) -> None:
    conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('proj', '/src/proj', 'proj', ?)", (T0,))
    conn.execute(
        "INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES ('proj-1', 'proj', 'claude-code', ?, ?)",
        (T0, T0),
    )
    conn.execute(
        "INSERT INTO events (uid, session_id, agent, kind, tool_name, occurred_at, received_at, payload, payload_bytes)"
        " VALUES ('u1', 'proj-1', 'claude-code', 'PreToolUse', 'Bash', ?, ?, '{\"big\": \"payload\"}', 18)",
        (T0, T0),
    )
    conn.execute("INSERT INTO prs (url, session_id, number, state, updated_at) VALUES ('https://gh/pr/1', 'proj-1', 1, 'open', ?)", (T0,))
    conn.execute(
        "INSERT INTO pr_checks (pr_url, name, commit_sha, status, created_at, updated_at)"
        " VALUES ('https://gh/pr/1', 'test', 'abc', 'in_progress', ?, ?)",
        (T0, T0),
    )
    conn.execute(
        "INSERT INTO escalations (session_id, reaction, priority, message, created_at)"
        " VALUES ('proj-1', 'ci-failed', 'urgent', 'CI failed 3 times', ?)",
        (T0,),
    )


def _log(conn: apsw.Connection, after: int = 0) -> list[dict]:
    cols = ["seq", "at", "entity", "op", "entity_id", "session_id", "project_id", "data"]
    rows = conn.execute("SELECT * FROM change_log WHERE seq > ? ORDER BY seq", (after,)).fetchall()
    return [dict(zip(cols, r, strict=True)) | {"data": orjson.loads(r[7])} for r in rows]


def _head(conn: apsw.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM change_log").fetchone()[0]


def test_inserts_log_one_row_per_entity(conn: apsw.Connection) -> None:
    _seed(conn)
    log = _log(conn)
    assert [(r["entity"], r["op"]) for r in log] == [
        ("session", "insert"), ("event", "insert"), ("pr", "insert"), ("check", "insert"), ("escalation", "insert"),
    ]
    assert all(r["session_id"] == "proj-1" and r["project_id"] == "proj" for r in log)
    session, event, pr, check, escalation = log
    assert session["entity_id"] == "proj-1" and session["data"]["status"] == "idle"
    assert event["data"]["kind"] == "PreToolUse" and event["data"]["tool_name"] == "Bash"
    assert "payload" not in event["data"], "change_log must carry the compact event row, not the payload"
    assert pr["entity_id"] == "https://gh/pr/1" and pr["data"]["state"] == "open"
    assert check["entity_id"] == "https://gh/pr/1\ntest\nabc" and check["data"]["status"] == "in_progress"
    assert escalation["data"]["message"] == "CI failed 3 times"
    assert all(r["at"].endswith("Z") for r in log)


@pytest.mark.parametrize(
    ("entity", "update"),
    [
        ("session", "UPDATE sessions SET status = 'working', activity = 'active' WHERE id = 'proj-1'"),
        ("event", "UPDATE events SET duration_ms = 42, ok = 1 WHERE uid = 'u1'"),
        ("pr", "UPDATE prs SET ci_state = 'failing' WHERE url = 'https://gh/pr/1'"),
        ("check", "UPDATE pr_checks SET status = 'failed' WHERE name = 'test'"),
        ("escalation", "UPDATE escalations SET acked_at = '2026-11-22T11:00:00Z'"),
    ],
)
def test_meaningful_update_logs_one_row(conn: apsw.Connection, entity: str, update: str) -> None:
    _seed(conn)
    before = _head(conn)
    conn.execute(update)
    log = _log(conn, before)
    assert [(r["entity"], r["op"]) for r in log] == [(entity, "update")]
    assert log[0]["session_id"] == "proj-1"


@pytest.mark.parametrize(
    "update",
    [
        "UPDATE sessions SET status = status, activity = activity WHERE id = 'proj-1'",
        f"UPDATE sessions SET updated_at = '{T1}', last_event_at = '{T1}' WHERE id = 'proj-1'",
        "UPDATE events SET ok = ok WHERE uid = 'u1'",
        "UPDATE prs SET state = 'open' WHERE url = 'https://gh/pr/1'",
        f"UPDATE prs SET updated_at = '{T1}' WHERE url = 'https://gh/pr/1'",
        f"UPDATE pr_checks SET status = 'in_progress', updated_at = '{T1}'",
        "UPDATE escalations SET message = 'CI failed 3 times'",
    ],
)
def test_noop_update_logs_nothing(conn: apsw.Connection, update: str) -> None:
    _seed(conn)
    before = _head(conn)
    conn.execute(update)
    assert conn.changes() >= 1, "the update must hit a row for this test to mean anything"
    assert _log(conn, before) == []


def test_upsert_logs_update_only_when_changed(conn: apsw.Connection) -> None:
    _seed(conn)
    upsert = (
        "INSERT INTO pr_checks (pr_url, name, commit_sha, status, created_at, updated_at)"
        " VALUES ('https://gh/pr/1', 'test', 'abc', ?, ?, ?)"
        " ON CONFLICT (pr_url, name, commit_sha) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
    )
    before = _head(conn)
    conn.execute(upsert, ("in_progress", T1, T1))
    assert _log(conn, before) == []
    conn.execute(upsert, ("failed", T1, T1))
    assert [(r["entity"], r["op"], r["data"]["status"]) for r in _log(conn, before)] == [("check", "update", "failed")]


def test_untracked_tables_do_not_log(conn: apsw.Connection) -> None:
    _seed(conn)
    before = _head(conn)
    conn.execute("INSERT INTO dead_letters (source, received_at, error, body) VALUES ('spool', ?, 'bad json', '{')", (T0,))
    conn.execute("INSERT INTO reaction_trackers (session_id, reaction, first_at) VALUES ('proj-1', 'ci-failed', ?)", (T0,))
    conn.execute("INSERT INTO deliveries (escalation_id, notifier) VALUES (1, 'pager')")
    assert _log(conn, before) == []


def test_foreign_keys_are_enforced(conn: apsw.Connection) -> None:
    with pytest.raises(apsw.ConstraintError):
        conn.execute(
            "INSERT INTO events (uid, session_id, agent, kind, occurred_at, received_at, payload, payload_bytes)"
            " VALUES ('u9', 'no-such-session', 'x', 'Stop', ?, ?, '{}', 2)",
            (T0, T0),
        )


# --- 0005: when a session's error happened ---------------------------------------------------------


def test_a_repeated_error_is_a_change_the_stream_sees(conn: apsw.Connection) -> None:
    _seed(conn)
    conn.execute("UPDATE sessions SET error = 'rate_limit', error_at = ? WHERE id = 'proj-1'", (T0,))
    before = _head(conn)
    # The same error again, later: only its time changes.
    conn.execute("UPDATE sessions SET error_at = ? WHERE id = 'proj-1'", (T1,))
    log = _log(conn, before)
    assert [(r["entity"], r["op"]) for r in log] == [("session", "update")]
    assert (log[0]["data"]["error"], log[0]["data"]["error_at"]) == ("rate_limit", T1)


def test_errors_stored_before_0005_get_the_time_of_their_event(tmp_path: Path) -> None:
    from yoyo import get_backend, read_migrations

    db = tmp_path / "old.db"
    backend = get_backend(f"sqlite:///{db}")
    try:
        older = read_migrations("package:aod:migrations").filter(lambda m: m.id < "0005")
        with backend.lock():
            backend.apply_migrations(backend.to_apply(older))
    finally:
        backend.connection.close()
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO sessions (id, agent, activity_at, error, created_at, updated_at)"
                  " VALUES ('failed-1', 'claude-code', ?, 'rate_limit', ?, ?)", (T0, T0, T1))
        c.execute("INSERT INTO sessions (id, agent, activity_at, created_at, updated_at)"
                  " VALUES ('fine-1', 'claude-code', ?, ?, ?)", (T0, T0, T1))
        head = c.execute("SELECT max(seq) FROM change_log").fetchone()[0]
    c.close()
    assert "0005_session_error_at" in migrate(db).applied
    with sqlite3.connect(db) as c:
        rows = dict(c.execute("SELECT id, error_at FROM sessions").fetchall())
        assert rows == {"failed-1": T0, "fine-1": None}
        assert c.execute("SELECT count(*) FROM change_log WHERE seq > ?", (head,)).fetchone()[0] == 0
    c.close()
