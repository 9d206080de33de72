"""Storing PR observations: the PR rows, their checks and comments, and the session's status,
in the one write transaction the caller runs this in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from aod.lifecycle.status import SessionFacts, TerminationReason, derive_status
from aod.storage import prs, sessions
from aod.timefmt import seconds_from_iso


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
    changes: dict[str, Any] = {}
    reason = session["termination_reason"]
    if reason is None and any(o["state"] == "merged" for o in observations) and prs.open_count(conn, session_id) == 0:
        reason = TerminationReason.MERGED.value
        changes.update({"termination_reason": reason, "ended_at": now})
    last_event_at = session["last_event_at"]
    facts = SessionFacts(
        activity=session["activity"],
        termination_reason=reason,
        last_event_at=seconds_from_iso(last_event_at) if last_event_at else None,
        prs=prs.facts_for_session(conn, session_id),
    )
    status = derive_status(facts, now=seconds_from_iso(now), stuck_after=stuck_after).value
    if status != session["status"]:
        changes["status"] = status
    if changes:
        sessions.update(conn, session_id, {**changes, "updated_at": now})
    return {"id": session_id, "status": status}
