"""Storing PR observations: the PR rows, their checks and comments, and the session's status,
in the one write transaction the caller runs this in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from aod.sessions.facts import FactWriter
from aod.storage import prs, sessions


class UnknownSession(LookupError):
    pass


def record_observations(
    conn: apsw.Connection, facts: FactWriter, session_id: str, observations: Sequence[dict[str, Any]], *, now: str
) -> dict[str, Any]:
    """Write validated observations (see scm.observation); `facts` re-derives the session's status
    (and ends it `merged` when its work has landed). Returns the session's id and (new) status."""
    session = sessions.get(conn, session_id)
    if session is None:
        raise UnknownSession(session_id)
    for obs in observations:
        prs.upsert(conn, session_id, obs, now)
        prs.upsert_checks(conn, obs["url"], obs["checks"], now)
        if obs["comments"] is not None:
            prs.replace_comments(conn, obs["url"], obs["comments"], now)
    merged = any(o["state"] == "merged" for o in observations)
    after = facts.prs_recorded(conn, session, merged=merged, now=now)
    return {"id": session_id, "status": after["status"]}
