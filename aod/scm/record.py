"""Storing PR observations: the PR rows, their checks and comments, and the session's status,
in the one write transaction the caller runs this in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from aod.lifecycle.manager import write_facts
from aod.lifecycle.status import TerminationReason
from aod.storage import prs, sessions


class UnknownSession(LookupError):
    pass


def record_observations(
    conn: apsw.Connection, session_id: str, observations: Sequence[dict[str, Any]], *, now: str, stuck_after: float
) -> dict[str, Any]:
    """Write validated observations (see scm.observation) and re-derive the session's status.

    A session whose PRs are all settled and one of them merged ends as `merged`: the work it
    was started for has landed. Returns the session's id and (new) status.
    """
    session = sessions.get(conn, session_id)
    if session is None:
        raise UnknownSession(session_id)
    for obs in observations:
        prs.upsert(conn, session_id, obs, now)
        prs.upsert_checks(conn, obs["url"], obs["checks"], now)
        if obs["comments"] is not None:
            prs.replace_comments(conn, obs["url"], obs["comments"], now)
    ended: dict[str, Any] = {}
    if (session["termination_reason"] is None and any(o["state"] == "merged" for o in observations)
            and prs.open_count(conn, session_id) == 0):
        ended = {"termination_reason": TerminationReason.MERGED.value, "ended_at": now}
    after = write_facts(conn, session_id, ended, now=now, stuck_after=stuck_after)
    assert after is not None  # read above, in this same transaction
    return {"id": session_id, "status": after["status"]}
