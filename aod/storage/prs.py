"""SQL of the `prs`, `pr_checks` and `pr_comments` tables (reads; the SCM observer writes)."""

from __future__ import annotations

from typing import Any

import apsw

from aod.lifecycle.status import PrFacts
from aod.storage.rows import dicts


def facts_for_session(conn: apsw.Connection, session_id: str) -> tuple[PrFacts, ...]:
    rows = conn.execute(
        "SELECT state, draft, review_decision, mergeability, ci_state FROM prs WHERE session_id = ?", (session_id,)
    ).fetchall()
    return tuple(
        PrFacts(state=state, draft=bool(draft), review_decision=review, mergeability=merge, ci_state=ci)
        for state, draft, review, merge, ci in rows
    )


def for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    prs = dicts(conn.execute("SELECT * FROM prs WHERE session_id = ? ORDER BY number", (session_id,)))
    for pr in prs:
        pr["checks"] = dicts(
            conn.execute("SELECT * FROM pr_checks WHERE pr_url = ? ORDER BY created_at, name", (pr["url"],))
        )
        pr["comments"] = dicts(
            conn.execute("SELECT * FROM pr_comments WHERE pr_url = ? ORDER BY created_at", (pr["url"],))
        )
    return prs


def trackers_for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    return dicts(conn.execute("SELECT * FROM reaction_trackers WHERE session_id = ? ORDER BY reaction", (session_id,)))


def escalations_for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    return dicts(conn.execute("SELECT * FROM escalations WHERE session_id = ? ORDER BY id DESC", (session_id,)))
