"""The reaper: every `reaper.interval` it probes each live session's runtime and writes what that
means, and re-derives the statuses that time alone changes (working -> stuck).

Probes run off the event loop (tmux as an asyncio subprocess, /proc in a thread) with a timeout;
their results are written in one transaction per tick, re-checked against the row there, so an
event or a kill that lands while a probe runs always wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apsw

from aod.lifecycle import manager
from aod.lifecycle.liveness import Probe
from aod.runtime.probes import Observation, Target, probe_all
from aod.storage import sessions
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, now_iso, seconds_from_iso

log = logging.getLogger("aod.reaper")


@dataclass(frozen=True)
class ReaperSettings:
    interval: float
    grace: float
    probe_timeout: float
    stuck_after: float


@dataclass
class TickReport:
    probed: dict[str, Probe] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)
    restatused: list[str] = field(default_factory=list)


class Reaper:
    def __init__(self, db: Database, settings: Callable[[], ReaperSettings]) -> None:
        """`settings` is asked afresh every tick, so a reloaded config applies at the next one."""
        self.db = db
        self._settings = settings
        self.ticks = 0
        self._failing: set[str] = set()  # sessions whose probe failed last time: warn once per streak
        self.observer: Callable[[TickReport, float], None] | None = None  # the metrics: verdicts, seconds

    @property
    def settings(self) -> ReaperSettings:
        return self._settings()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every interval until `stop` is set; a failing tick is logged, never fatal."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval)
            if stop.is_set():
                return
            try:
                await self.tick()
            except Exception:
                log.exception("reaper tick failed")

    async def tick(self) -> TickReport:
        started = time.monotonic()
        settings = self.settings
        before = iso_from_seconds(time.time() - settings.stuck_after)
        rows, silent = await self.db.read(lambda c: (sessions.probe_targets(c), sessions.silent_working(c, before)))
        targets = [
            Target(r["id"], r["runtime"], r["runtime_handle"],
                   seconds_from_iso(r["last_event_at"]) if r["last_event_at"] else None)
            for r in rows
        ]
        observations = await probe_all(targets, timeout=settings.probe_timeout)
        report = TickReport(probed={o.session_id: o.probe for o in observations})
        self._report_failures(observations)
        now = now_iso()
        by_id = {r["id"]: r for r in rows}
        worth_writing = [o for o in observations if _changes_something(o, by_id[o.session_id], now, settings.grace)]
        if worth_writing or silent:
            report.ended, report.restatused = await self.db.write(lambda c: _write(c, worth_writing, settings))
        for session_id in report.ended:
            log.info("session runtime lost", extra={"session": session_id})
        self.ticks += 1
        if self.observer is not None:
            self.observer(report, time.monotonic() - started)
        return report

    def _report_failures(self, observations: list[Observation]) -> None:
        failing = {o.session_id: o for o in observations if o.probe is Probe.FAILED}
        for session_id, o in failing.items():
            if session_id not in self._failing:
                log.warning("probe failed; the session is kept as it is", extra={"session": session_id, "error": o.detail})
        for session_id in self._failing - set(failing):
            log.info("probe works again", extra={"session": session_id})
        self._failing = set(failing)


def _changes_something(obs: Observation, row: dict[str, Any], now: str, grace: float) -> bool:
    """Whether a write could change anything: most ticks find every session as it was.

    `row` is a `probe_targets` row: the fields it lacks (termination_reason, ended_at) are
    unset on every live session, so a probe that sets them changes something.
    """
    fields = manager.observed_fields(obs, row, now=now, grace=grace)
    return any(row.get(k) != v for k, v in fields.items())


def _write(conn: apsw.Connection, observations: list[Observation], s: ReaperSettings) -> tuple[list[str], list[str]]:
    now = now_iso()
    ended = manager.apply_observations(conn, observations, now=now, grace=s.grace, stuck_after=s.stuck_after)
    return ended, manager.restatus_silent(conn, now=now, stuck_after=s.stuck_after)
