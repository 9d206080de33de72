"""Minimal rows for storage tests (the real ingest path builds richer ones)."""

from __future__ import annotations

import apsw

T0 = "2026-11-22T10:00:00.000000Z"


def seed_session(conn: apsw.Connection, session_id: str = "proj-1") -> None:
    conn.execute(
        "INSERT OR IGNORE INTO projects (id, path, name, created_at) VALUES ('proj', '/src/proj', 'proj', ?)", (T0,)
    )
    conn.execute(
        "INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES (?, 'proj', 'claude-code', ?, ?)",
        (session_id, T0, T0),
    )


def insert_event(conn: apsw.Connection, uid: str, payload: str = "{}", session_id: str = "proj-1") -> int:
    conn.execute(
        "INSERT INTO events (uid, session_id, agent, kind, tool_name, occurred_at, received_at, payload, payload_bytes)"
        " VALUES (?, ?, 'claude-code', 'PreToolUse', 'Bash', ?, ?, ?, ?)",
        (uid, session_id, T0, T0, payload, len(payload)),
    )
    return conn.last_insert_rowid()


def count_events(conn: apsw.Connection, uid: str | None = None) -> int:
    if uid is None:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return conn.execute("SELECT count(*) FROM events WHERE uid = ?", (uid,)).fetchone()[0]
