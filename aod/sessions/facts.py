"""The one writer of sessions' facts and their status.

Ingest, the reaper, the SCM record and session control all write a session through a
`FactWriter`: every change of facts is written together with the status derived from the facts
after it, in the caller's write transaction, so the change_log triggers see both at once and no
status is ever set by hand. The status rules stay pure (`aod.lifecycle.status`); the daemon
binds them here once, with `stuck_after` read from the live config at each write.

The methods taking a connection run on the writer thread (inside `await db.write(...)`), or on a
reader for `silence`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from aod.lifecycle.liveness import judge
from aod.lifecycle.status import Activity, SessionFacts, Status, TerminationReason, derive_status, pr_facts
from aod.runtime import process
from aod.runtime.probes import Observation
from aod.sessions.projects import ProjectLocation
from aod.storage import projects, prs, sessions
from aod.storage.rows import BOOLEANS, as_booleans
from aod.timefmt import iso_from_seconds, seconds_from_iso


@dataclass(frozen=True)
class Silence:
    """What time alone will do to working sessions (the reaper's deadline for them)."""

    overdue: bool  # a working session is silent past stuck_after already: a write makes it stuck
    next_at: float | None  # epoch seconds at which the next working session turns stuck


class FactWriter:
    def __init__(self, stuck_after: Callable[[], float]) -> None:
        """`stuck_after` is asked at every write, so a reloaded config applies at the next one."""
        self.stuck_after = stuck_after

    def status(self, conn: apsw.Connection, row: Mapping[str, Any], *, now: float) -> Status:
        """The status the facts of `row` (and its session's PRs) lead to at `now`."""
        facts = SessionFacts(
            activity=row["activity"],
            termination_reason=row["termination_reason"],
            last_event_at=seconds_from_iso(row["last_event_at"]) if row["last_event_at"] else None,
            prs=pr_facts(prs.status_rows(conn, row["id"])),
        )
        return derive_status(facts, now=now, stuck_after=self.stuck_after())

    def write(
        self, conn: apsw.Connection, session_id: str, fields: Mapping[str, Any], *, now: str,
        row: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set `fields` and the status they lead to; the session as it is now (None: no such session).

        `row` is the session as the caller read it in this transaction (saves reading it again).
        Nothing is written when nothing changes, so a periodic caller adds no change_log noise.
        """
        if row is None:
            row = sessions.get(conn, session_id)
            if row is None:
                return None
        after = {**row, **fields}
        as_booleans(after, BOOLEANS["sessions"])  # a caller may pass 0/1; the answer is an API object
        if row["termination_reason"] is not None and after["termination_reason"] is None and "is_alive" not in fields:
            after["is_alive"] = None  # it came back: the verdict on the old runtime no longer holds
        after["status"] = self.status(conn, after, now=seconds_from_iso(now)).value
        changes = {k: v for k, v in after.items() if row[k] != v}
        if not changes:
            return dict(row)
        changes["updated_at"] = after["updated_at"] = now
        sessions.update(conn, session_id, changes)
        return after

    def create(self, conn: apsw.Connection, fields: Mapping[str, Any], *, now: str) -> dict[str, Any]:
        """A new session row (spawned, or adopted from its first event), its status derived like any other."""
        row = {c: None for c in sessions.COLUMNS} | {"activity": "idle", "created_at": now, "updated_at": now} | dict(fields)
        row["status"] = self.status(conn, row, now=seconds_from_iso(now)).value
        sessions.create(conn, {k: v for k, v in row.items() if v is not None})
        created = sessions.get(conn, row["id"])
        assert created is not None
        return created

    def adopt(
        self, conn: apsw.Connection, *, wanted_id: str | None, agent: str, agent_session_id: str | None,
        workspace: str | None, project: ProjectLocation, now: str,
    ) -> str:
        """A session for an agent aod did not start, from its first event; its id.

        It belongs to its project (made on first sight) and takes the id the client named
        (AOD_SESSION_ID) while that is free, else the project's next `{project}-{n}`.
        """
        project_id = projects.ensure(conn, project.path, project.name, project.origin_url, now)
        session_id = wanted_id
        if session_id is None or sessions.exists(conn, session_id):
            session_id = sessions.new_id(conn, project_id)
        self.create(conn, {"id": session_id, "project_id": project_id, "agent": agent,
                           "agent_session_id": agent_session_id, "workspace_path": workspace}, now=now)
        return session_id

    def killed(self, conn: apsw.Connection, session_id: str, *, now: str) -> dict[str, Any] | None:
        return self.write(conn, session_id, {
            "termination_reason": TerminationReason.KILLED.value, "is_alive": False, "ended_at": now,
        }, now=now)

    def spawn_failed(self, conn: apsw.Connection, session_id: str, reason: str, *, now: str) -> dict[str, Any] | None:
        """The reserved session ends `exited`, saying why, so it never waits for the reaper as idle."""
        return self.write(conn, session_id, {
            "activity": Activity.EXITED.value, "termination_reason": TerminationReason.EXITED.value,
            "ended_at": now, "error": f"spawn failed: {reason}", "error_at": now, "is_alive": False,
        }, now=now)

    def absorb(self, conn: apsw.Connection, phantom: str, into: str, *, now: str) -> bool:
        """Fold the throwaway session of a --resume into the session it resumed.

        It is marked ended first, so a client that saw it appear on the stream sees it end (the
        change log records inserts and updates only); the answer says whether it is gone.
        """
        self.write(conn, phantom, {
            "activity": Activity.EXITED.value, "termination_reason": TerminationReason.EXITED.value, "ended_at": now,
        }, now=now)
        return sessions.absorb(conn, phantom, into)

    def prs_recorded(self, conn: apsw.Connection, session: Mapping[str, Any], *, merged: bool, now: str) -> dict[str, Any]:
        """Re-derive the status of `session` (its row, read in this transaction) after its PRs were
        written; `merged`: one of them was seen merged.

        A session whose PRs are all settled and one of them merged ends as `merged`: the work it
        was started for has landed.
        """
        ended: dict[str, Any] = {}
        if merged and session["termination_reason"] is None and prs.open_count(conn, session["id"]) == 0:
            ended = {"termination_reason": TerminationReason.MERGED.value, "ended_at": now}
        after = self.write(conn, session["id"], ended, now=now, row=session)
        assert after is not None  # given a row, write always answers one
        return after

    def observed(self, conn: apsw.Connection, observations: Iterable[Observation], *, now: str, grace: float) -> list[str]:
        """Write what the reaper's probes found; the ids of the sessions it ended (runtime_lost)."""
        ended = []
        for obs in observations:
            row = sessions.get(conn, obs.session_id)
            # Re-checked here, in the transaction: an event or a kill may have come in since the probe.
            if row is None or row["termination_reason"] is not None or row["runtime_handle"] != obs.handle:
                continue
            fields = observed_fields(obs, row, now=now, grace=grace)
            self.write(conn, obs.session_id, fields, now=now, row=row)
            if "termination_reason" in fields:
                ended.append(obs.session_id)
        return ended

    def restatus_silent(self, conn: apsw.Connection, *, now: str) -> list[str]:
        """Re-derive the sessions that time alone can change (working -> stuck); the ids that changed."""
        before = iso_from_seconds(seconds_from_iso(now) - self.stuck_after())
        changed = []
        for row in sessions.silent_working(conn, before):
            after = self.write(conn, row["id"], {}, now=now, row=row)
            if after is not None and after["status"] != row["status"]:
                changed.append(row["id"])
        return changed

    def silence(self, conn: apsw.Connection, *, now: float) -> Silence:
        """Whether a working session is overdue to turn stuck, and when the next one will be."""
        stuck_after = self.stuck_after()
        before = iso_from_seconds(now - stuck_after)
        next_silent = sessions.next_silent(conn, before)
        return Silence(
            overdue=bool(sessions.silent_working(conn, before)),
            next_at=None if next_silent is None else seconds_from_iso(next_silent) + stuck_after,
        )


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
