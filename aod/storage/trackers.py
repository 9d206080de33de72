"""SQL of the `reaction_trackers` table: the escalation budget of each (session, reaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from aod.storage import nudges
from aod.storage.rows import dicts

COLUMNS = ("attempts", "first_at", "last_at", "last_signature", "escalated_at", "resolved_at")


def for_sessions(conn: apsw.Connection, session_ids: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    if not session_ids:
        return {}
    marks = ", ".join("?" for _ in session_ids)
    rows = dicts(conn.execute(f"SELECT * FROM reaction_trackers WHERE session_id IN ({marks})", list(session_ids)))
    return {(r["session_id"], r["reaction"]): r for r in rows}


def save(conn: apsw.Connection, session_id: str, reaction: str, state: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO reaction_trackers (session_id, reaction, attempts, first_at, last_at, last_signature,"
        " escalated_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_id, reaction) DO UPDATE SET attempts = excluded.attempts,"
        " first_at = excluded.first_at, last_at = excluded.last_at, last_signature = excluded.last_signature,"
        " escalated_at = excluded.escalated_at, resolved_at = excluded.resolved_at",
        (session_id, reaction, *(state[c] for c in COLUMNS)),
    )


def for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    """The session's trackers, each with the nudges it decided (newest first)."""
    rows = dicts(conn.execute("SELECT * FROM reaction_trackers WHERE session_id = ? ORDER BY reaction", (session_id,)))
    sent = nudges.for_session(conn, session_id)
    for row in rows:
        row["nudges"] = [n for n in sent if n["reaction"] == row["reaction"]]
    return rows


def candidate_sessions(conn: apsw.Connection, changed_since: str) -> list[dict[str, Any]]:
    """The sessions reactions look at: those that changed lately (new events, a new PR status,
    just ended), and those with an open tracker whose timer may fall due.

    A UNION of two indexed lookups, not one OR over the table: this runs after every burst of
    commits, and a years-old sessions table must not be scanned each time.
    """
    return dicts(conn.execute(
        "SELECT * FROM sessions WHERE id IN (SELECT id FROM sessions WHERE updated_at >= ?"
        " UNION SELECT session_id FROM reaction_trackers WHERE resolved_at IS NULL AND escalated_at IS NULL)"
        " ORDER BY id",
        (changed_since,),
    ))
