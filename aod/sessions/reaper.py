"""The reaper: it probes each live session's runtime and writes what that means, and re-derives
the statuses that time alone changes (working -> stuck).

It ticks when something may have changed, not on a clock: when a watched runtime exits (a pidfd,
a tmux control client: `aod.runtime.watch`), a few seconds after commits (a new session or pane
to watch), at the next deadline a tick computed (a dead runtime's grace running out, a working
session turning stuck), and every `reaper.interval` as the fallback for what no watch hears.

Probes run off the event loop (tmux as an asyncio subprocess, /proc in a thread) with a timeout;
their results are written in one transaction per tick, re-checked against the row there, so an
event or a kill that lands while a probe runs always wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apsw

from aod.runtime.probe import Probe
from aod.runtime.probes import Observation, Target, probe_all
from aod.runtime.watch import RuntimeWatch
from aod.sessions.facts import FactWriter, Silence, observed_fields
from aod.storage import sessions
from aod.storage.database import Database
from aod.timefmt import now_iso, seconds_from_iso

log = logging.getLogger("aod.reaper")

# After commits (ingest, spawn) one tick this much later finds new runtimes to watch; under a
# stream of events that is one tick per this many seconds, never one per commit.
AFTER_COMMIT = 2.0
# Past a deadline by this much, so the strict comparisons (`> grace`, `> stuck_after`) hold.
DEADLINE_SLACK = 0.05


@dataclass(frozen=True)
class ReaperSettings:
    interval: float
    grace: float
    probe_timeout: float


@dataclass
class TickReport:
    probed: dict[str, Probe] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)
    restatused: list[str] = field(default_factory=list)


class Reaper:
    def __init__(self, db: Database, settings: Callable[[], ReaperSettings], facts: FactWriter) -> None:
        """`settings` is asked afresh every tick, so a reloaded config applies at the next one."""
        self.db = db
        self._settings = settings
        self.facts = facts  # writes what the probes found, and working -> stuck
        self.ticks = 0
        self._failing: set[str] = set()  # sessions whose probe failed last time: warn once per streak
        self.observer: Callable[[TickReport, float], None] | None = None  # the metrics: verdicts, seconds
        self.watch: RuntimeWatch | None = None  # set by the daemon: exits wake the reaper
        self.next_due: float | None = None  # epoch seconds: the earliest deadline the last tick saw
        self.woken = asyncio.Event()  # the job's wake flag
        self._after_commit: asyncio.TimerHandle | None = None
        self._unlisten: Callable[[], None] | None = None

    def wake(self) -> None:
        """Tick now (a watched runtime may have exited)."""
        self.woken.set()

    def _committed(self) -> None:
        if self._after_commit is None:
            self._after_commit = asyncio.get_running_loop().call_later(AFTER_COMMIT, self._commit_tick)

    def _commit_tick(self) -> None:
        self._after_commit = None
        self.wake()

    @property
    def settings(self) -> ReaperSettings:
        return self._settings()

    def listen(self) -> None:
        """Tick a little after commits (a new session or pane to watch); `close` stops it."""
        self._unlisten = self.db.add_commit_listener(self._committed)

    async def step(self) -> float:
        """One tick (as the job: when woken, at the next deadline, or every interval)."""
        await self.tick()
        return self.delay()

    def delay(self) -> float:
        """Seconds until the next tick is due: the earliest deadline, at most `interval`."""
        timeout = self.settings.interval
        if self.next_due is not None:
            timeout = min(timeout, max(0.0, self.next_due - time.time()))
        return timeout

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._after_commit is not None:
            self._after_commit.cancel()
            self._after_commit = None
        if self.watch is not None:
            await self.watch.close()

    async def tick(self) -> TickReport:
        started = time.monotonic()
        settings = self.settings
        looked_at = time.time()
        rows, silence = await self.db.read(lambda c: (sessions.probe_targets(c), self.facts.silence(c, now=looked_at)))
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
        if worth_writing or silence.overdue:
            report.ended, report.restatused = await self.db.write(lambda c: self._write(c, worth_writing, settings))
        for session_id in report.ended:
            log.info("session runtime lost", extra={"session": session_id})
        self.next_due = _next_due(observations, by_id, report.ended, silence, settings)
        await self._watch(observations, settings)
        self.ticks += 1
        if self.observer is not None:
            self.observer(report, time.monotonic() - started)
        return report

    def _write(self, conn: apsw.Connection, observations: list[Observation], s: ReaperSettings) -> tuple[list[str], list[str]]:
        now = now_iso()
        ended = self.facts.observed(conn, observations, now=now, grace=s.grace)
        return ended, self.facts.restatus_silent(conn, now=now)

    async def _watch(self, observations: list[Observation], settings: ReaperSettings) -> None:
        """Have the watch wake us when what the probe saw alive goes away."""
        if self.watch is None:
            return
        alive = [o for o in observations if o.probe is Probe.ALIVE]
        try:
            await self.watch.sync(panes=[o.handle for o in alive if o.handle.startswith("%")],
                                  processes=[o.handle for o in alive if not o.handle.startswith("%")],
                                  timeout=settings.probe_timeout)
        except Exception:  # the periodic probe still runs
            log.exception("cannot watch runtimes")

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
    fields = observed_fields(obs, row, now=now, grace=grace)
    return any(row.get(k) != v for k, v in fields.items())


def _next_due(observations: list[Observation], rows: dict[str, dict[str, Any]], ended: list[str],
              silence: Silence, s: ReaperSettings) -> float | None:
    """When the next tick must run whatever happens: a dead runtime's grace ends (the rule holds:
    only dead with no event for `grace` ends a session), or a working session turns stuck."""
    due = []
    for o in observations:
        if o.probe is Probe.DEAD and o.session_id not in ended:
            row = rows[o.session_id]
            seen = row["last_event_at"] or row["created_at"]
            if seen:
                due.append(seconds_from_iso(seen) + s.grace)
    if silence.next_at is not None:
        due.append(silence.next_at)
    return min(due) + DEADLINE_SLACK if due else None
