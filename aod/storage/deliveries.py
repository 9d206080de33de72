"""SQL of the `deliveries` table: the notifier outbox of escalations."""

from __future__ import annotations

from typing import Any

import apsw
import orjson

from aod.storage.rows import dicts, grouped_counts, scalar_text

# What a notifier sends: the escalation and enough of its session to act on it.
_DUE = (
    "SELECT d.id, d.escalation_id, d.notifier, d.attempts, e.session_id, e.reaction, e.priority, e.message,"
    " e.created_at, e.acked_at, s.status AS session_status, s.title AS session_title,"
    " s.project_id AS session_project_id, s.branch AS session_branch, s.workspace_path AS session_workspace_path"
    " FROM deliveries d JOIN escalations e ON e.id = d.escalation_id LEFT JOIN sessions s ON s.id = e.session_id"
)


def add(conn: apsw.Connection, escalation_id: int, notifier: str, now: str) -> None:
    conn.execute(
        "INSERT INTO deliveries (escalation_id, notifier, next_attempt_at) VALUES (?, ?, ?)"
        " ON CONFLICT (escalation_id, notifier) DO NOTHING",
        (escalation_id, notifier, now),
    )


def due(conn: apsw.Connection, now: str, limit: int = 50) -> list[dict[str, Any]]:
    return dicts(conn.execute(
        f"{_DUE} WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
        (now, limit),
    ))


def next_due_at(conn: apsw.Connection) -> str | None:
    return scalar_text(conn.execute("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"))


def mark_sent(conn: apsw.Connection, delivery_id: int, now: str) -> None:
    conn.execute(
        "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL,"
        " next_attempt_at = NULL WHERE id = ? AND status = 'pending'",
        (now, delivery_id),
    )


def retry_later(conn: apsw.Connection, delivery_id: int, next_at: str, error: str) -> None:
    conn.execute(
        "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
        " WHERE id = ? AND status = 'pending'",
        (next_at, error[:2000], delivery_id),
    )


def fail(conn: apsw.Connection, delivery_id: int, error: str, *, attempted: bool = True) -> None:
    conn.execute(
        "UPDATE deliveries SET status = 'failed', attempts = attempts + ?, last_error = ?, next_attempt_at = NULL"
        " WHERE id = ? AND status = 'pending'",
        (int(attempted), error[:2000], delivery_id),
    )


def cancel_pending(conn: apsw.Connection, escalation_id: int, reason: str) -> int:
    conn.execute(
        "UPDATE deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL"
        " WHERE escalation_id = ? AND status = 'pending'",
        (reason, escalation_id),
    )
    return conn.changes()


def for_escalation(conn: apsw.Connection, escalation_id: int) -> list[dict[str, Any]]:
    return dicts(conn.execute("SELECT * FROM deliveries WHERE escalation_id = ? ORDER BY id", (escalation_id,)))


def for_escalations(conn: apsw.Connection, escalation_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each escalation's deliveries, oldest first; an escalation routed nowhere has no entry."""
    found: dict[int, list[dict[str, Any]]] = {}
    if not escalation_ids:
        return found
    # json_each takes a page of ids as one parameter (no statement per page size to prepare).
    rows = dicts(conn.execute(
        "SELECT * FROM deliveries WHERE escalation_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (orjson.dumps(escalation_ids).decode(),),
    ))
    for row in rows:
        found.setdefault(row["escalation_id"], []).append(row)
    return found


def counts_by_status(conn: apsw.Connection) -> dict[str, int]:
    """Deliveries per status (pending, sent, failed; only statuses that have some)."""
    return grouped_counts(conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
