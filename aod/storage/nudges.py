"""SQL of the `nudges` table: the outbox of send-to-agent messages (migration 0004)."""

from __future__ import annotations

from typing import Any

import apsw

from aod.storage.rows import dicts, grouped_counts, one, scalar_text


def add(conn: apsw.Connection, session_id: str, reaction: str, signature: str, message: str, now: str) -> bool:
    """Record a nudge to send; False when this signature was nudged before (nothing is added)."""
    conn.execute(
        "INSERT INTO nudges (session_id, reaction, signature, message, created_at, next_attempt_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, reaction, signature) DO NOTHING",
        (session_id, reaction, signature, message, now, now),
    )
    return conn.changes() > 0


def due(conn: apsw.Connection, now: str, limit: int = 50) -> list[dict[str, Any]]:
    return dicts(conn.execute(
        "SELECT * FROM nudges WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        (now, limit),
    ))


def next_due_at(conn: apsw.Connection) -> str | None:
    return scalar_text(conn.execute("SELECT min(next_attempt_at) FROM nudges WHERE status = 'pending'"))


def get(conn: apsw.Connection, nudge_id: int) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM nudges WHERE id = ?", (nudge_id,)))


def start_typing(conn: apsw.Connection, nudge_id: int, now: str) -> None:
    conn.execute("UPDATE nudges SET typing_since = ? WHERE id = ? AND status = 'pending'", (now, nudge_id))


def mark_sent(conn: apsw.Connection, nudge_id: int, now: str) -> None:
    conn.execute(
        "UPDATE nudges SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL,"
        " typing_since = NULL WHERE id = ? AND status = 'pending'",
        (now, nudge_id),
    )


def retry_later(conn: apsw.Connection, nudge_id: int, next_at: str, error: str, *, attempted: bool) -> None:
    conn.execute(
        "UPDATE nudges SET attempts = attempts + ?, next_attempt_at = ?, last_error = ?, typing_since = NULL"
        " WHERE id = ? AND status = 'pending'",
        (int(attempted), next_at, error[:2000], nudge_id),
    )


def finish(conn: apsw.Connection, nudge_id: int, status: str, error: str, *, attempted: bool) -> None:
    """End a nudge unsent: `failed` (gave up) or `cancelled` (no longer wanted)."""
    conn.execute(
        "UPDATE nudges SET status = ?, attempts = attempts + ?, last_error = ?, typing_since = NULL"
        " WHERE id = ? AND status = 'pending'",
        (status, int(attempted), error[:2000], nudge_id),
    )


def for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    return dicts(conn.execute("SELECT * FROM nudges WHERE session_id = ? ORDER BY id DESC", (session_id,)))


def failure(conn: apsw.Connection, session_id: str, reaction: str, signature: str) -> str | None:
    """Why the nudge for this signature failed for good, or None if it did not."""
    row = conn.execute(
        "SELECT last_error FROM nudges WHERE session_id = ? AND reaction = ? AND signature = ? AND status = 'failed'",
        (session_id, reaction, signature),
    ).fetchone()
    return None if row is None else (row[0] or "failed")


def exists(conn: apsw.Connection, session_id: str, reaction: str, signature: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM nudges WHERE session_id = ? AND reaction = ? AND signature = ?", (session_id, reaction, signature)
    ).fetchone() is not None


def counts_by_status(conn: apsw.Connection) -> dict[str, int]:
    """Nudges per status (pending, sent, failed, cancelled; only statuses that have some)."""
    return grouped_counts(conn.execute("SELECT status, count(*) FROM nudges GROUP BY status"))
