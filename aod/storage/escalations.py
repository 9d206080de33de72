"""SQL of the `escalations` table: pages for the human, each with its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from aod.storage import deliveries, keyset
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
    return _with_deliveries(conn, rows)


@dataclass(frozen=True)
class EscalationFilter:
    open: bool = False  # only those nobody has acknowledged
    session: str | None = None
    priorities: tuple[str, ...] = ()


def listing(
    conn: apsw.Connection, flt: EscalationFilter, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, each with its deliveries; keyset on id (ids grow with created_at)."""
    query = (
        keyset.Query("SELECT * FROM escalations")
        .where_if(flt.session, "session_id = ?")
        .where_in("priority", flt.priorities)
    )
    if flt.open:
        query.where("acked_at IS NULL")
    if cursor:
        (before,) = keyset.decode(cursor, (int,))
        query.where("id < ?", before)
    rows, next_cursor = query.page(conn, "id DESC", limit, lambda row: [row["id"]])
    return _with_deliveries(conn, rows), next_cursor


def open_by_priority(conn: apsw.Connection) -> dict[str, int]:
    """How many escalations wait for an ack, per priority (only priorities that have some)."""
    return dict(conn.execute("SELECT priority, count(*) FROM escalations WHERE acked_at IS NULL GROUP BY priority"))


def _with_deliveries(conn: apsw.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # One query for a whole page instead of one per escalation.
    found = deliveries.for_escalations(conn, [row["id"] for row in rows])
    for row in rows:
        row["deliveries"] = found.get(row["id"], [])
    return rows
