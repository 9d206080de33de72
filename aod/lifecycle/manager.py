"""Writing lifecycle facts: every change is written together with the status derived from the
facts after it, in the caller's write transaction (so the change_log triggers see both at once).

These functions run on the writer thread (inside `await db.write(...)`); the rules they apply are
the pure ones of `status`, `liveness` and `activity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import apsw

from aod.lifecycle.liveness import judge
from aod.lifecycle.status import SessionFacts, TerminationReason, derive_status, pr_facts
from aod.runtime import process
from aod.runtime.probes import Observation
from aod.storage import prs, sessions
from aod.storage.rows import BOOLEANS, as_booleans
from aod.timefmt import iso_from_seconds, seconds_from_iso


def derived_status(conn: apsw.Connection, row: Mapping[str, Any], *, now: float, stuck_after: float) -> str:
    facts = SessionFacts(
        activity=row["activity"],
        termination_reason=row["termination_reason"],
        last_event_at=seconds_from_iso(row["last_event_at"]) if row["last_event_at"] else None,
        prs=pr_facts(prs.status_rows(conn, row["id"])),
    )
    return derive_status(facts, now=now, stuck_after=stuck_after)


def write_facts(
    conn: apsw.Connection, session_id: str, fields: Mapping[str, Any], *, now: str, stuck_after: float
) -> dict[str, Any] | None:
    """Set `fields` and the status they lead to; the session as it is now (None: no such session).

    Nothing is written when nothing changes, so a periodic caller adds no change_log noise.
    """
    row = sessions.get(conn, session_id)
    if row is None:
        return None
    after = {**row, **fields}
    as_booleans(after, BOOLEANS["sessions"])  # a caller may pass 0/1; the answer is an API object
    after["status"] = derived_status(conn, after, now=seconds_from_iso(now), stuck_after=stuck_after)
    changes = {k: v for k, v in after.items() if row[k] != v}
    if not changes:
        return row
    changes["updated_at"] = after["updated_at"] = now
    sessions.update(conn, session_id, changes)
    return after


def create_session(conn: apsw.Connection, fields: Mapping[str, Any], *, now: str, stuck_after: float) -> dict[str, Any]:
    """A new session row (spawned), its status derived like any other."""
    row = {c: None for c in sessions.COLUMNS} | {"activity": "idle", "created_at": now, "updated_at": now} | dict(fields)
    row["status"] = derived_status(conn, row, now=seconds_from_iso(now), stuck_after=stuck_after)
    sessions.create(conn, {k: v for k, v in row.items() if v is not None})
    created = sessions.get(conn, row["id"])
    assert created is not None
    return created


def observed_fields(obs: Observation, row: Mapping[str, Any], *, now: str, grace: float) -> dict[str, Any]:
    """The facts a probe result sets on the live session `row` whose handle it probed."""
    seen = row["last_event_at"] or row["created_at"]
    verdict = judge(
        obs.probe, last_sign_of_life=seconds_from_iso(seen) if seen else None, now=seconds_from_iso(now), grace=grace
    )
    fields: dict[str, Any] = {"is_alive": verdict.is_alive}
    if obs.start_token and row["runtime"] == "process":
        pid, token = process.parse_handle(obs.handle)
        if token is None:
            fields["runtime_handle"] = process.format_handle(pid, obs.start_token)
    if verdict.terminate:
        fields.update({"termination_reason": TerminationReason.RUNTIME_LOST.value, "ended_at": now})
    return fields


def apply_observations(
    conn: apsw.Connection, observations: Iterable[Observation], *, now: str, grace: float, stuck_after: float
) -> list[str]:
    """Write what the reaper's probes found; the ids of the sessions it ended (runtime_lost)."""
    ended = []
    for obs in observations:
        row = sessions.get(conn, obs.session_id)
        # Re-checked here, in the transaction: an event or a kill may have come in since the probe.
        if row is None or row["termination_reason"] is not None or row["runtime_handle"] != obs.handle:
            continue
        fields = observed_fields(obs, row, now=now, grace=grace)
        write_facts(conn, obs.session_id, fields, now=now, stuck_after=stuck_after)
        if "termination_reason" in fields:
            ended.append(obs.session_id)
    return ended


def restatus_silent(conn: apsw.Connection, *, now: str, stuck_after: float) -> list[str]:
    """Re-derive the sessions that time alone can change (working -> stuck); the ids that changed."""
    before = iso_from_seconds(seconds_from_iso(now) - stuck_after)
    changed = []
    for row in sessions.silent_working(conn, before):
        after = write_facts(conn, row["id"], {}, now=now, stuck_after=stuck_after)
        if after is not None and after["status"] != row["status"]:
            changed.append(row["id"])
    return changed


def mark_killed(conn: apsw.Connection, session_id: str, *, now: str, stuck_after: float) -> dict[str, Any] | None:
    return write_facts(
        conn, session_id,
        {"termination_reason": TerminationReason.KILLED.value, "is_alive": False, "ended_at": now},
        now=now, stuck_after=stuck_after,
    )
