"""SQL of the `escalations` table: pages for the human, each with its deliveries."""

from __future__ import annotations

from typing import Any

import apsw

from aod.storage import deliveries
from aod.storage.rows import dicts, one


def add(conn: apsw.Connection, session_id: str, reaction: str, priority: str, message: str, now: str) -> int:
    conn.execute(
        "INSERT INTO escalations (session_id, reaction, priority, message, created_at) VALUES (?, ?, ?, ?, ?)",
        (session_id, reaction, priority, message, now),
    )
    return conn.last_insert_rowid()


def get(conn: apsw.Connection, escalation_id: int) -> dict[str, Any] | None:
    row = one(conn.execute("SELECT * FROM escalations WHERE id = ?", (escalation_id,)))
    if row is not None:
        row["deliveries"] = deliveries.for_escalation(conn, escalation_id)
    return row


def ack(conn: apsw.Connection, escalation_id: int, now: str) -> bool:
    """Mark acknowledged; False when it was acknowledged already (the first ack's time stays)."""
    conn.execute("UPDATE escalations SET acked_at = ? WHERE id = ? AND acked_at IS NULL", (now, escalation_id))
    return conn.changes() > 0


def for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    rows = dicts(conn.execute("SELECT * FROM escalations WHERE session_id = ? ORDER BY id DESC", (session_id,)))
    for row in rows:
        row["deliveries"] = deliveries.for_escalation(conn, row["id"])
    return rows
