"""The reaction engine: reads the facts, asks the pure rules, and records their decisions.

A decision (the tracker row, and the nudge or the escalation with one delivery per routed
notifier) is written in one transaction, before anything is typed or sent; the nudger and the
delivery worker act on those rows afterwards. So a crash at any point leaves either no
decision (it is taken again from the same facts) or a recorded one (it is carried out once).

The engine wakes after commits and looks at the sessions the change log names since its last
look (new events, PR observations, status changes); it looks at every candidate session when a
duration timer or a stuck threshold falls due, when the config changes, and every SWEEP
seconds. It first decides on a reader; only when something is to change does it re-decide
inside the write transaction, from the facts as they are there, so a decision never rests on
a stale read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import apsw

from aod.config import Config
from aod.config_reload import ConfigHolder
from aod.reactions.conditions import BRAKE_RUNS, SessionView, conditions, stuck_due_at
from aod.reactions.rules import Decision, Tracker, decide, due_at
from aod.storage import change_log, deliveries, escalations, nudges, prs, sessions, trackers
from aod.storage.database import Database
from aod.timefmt import iso_from_ns, iso_from_seconds, seconds_from_iso

log = logging.getLogger("aod.reactions")

# Sessions untouched for this long (no event, no status change) are not looked at, unless a
# tracker of theirs waits on a timer: an adopted session whose SessionEnd never came must not
# cost an evaluation forever.
RECENT = 24 * 3600.0
# Commits come in bursts (ingest): evaluate at most this often.
MIN_GAP = 0.1
# With nothing due, look anyway this often (a clock jump, a write from another process).
MAX_SLEEP = 30.0
# Every candidate is looked at this often even when the change log names none of them.
SWEEP = 30.0
# More change_log rows than this since the last look: look at every candidate instead.
MAX_CHANGES = 5000


@dataclass
class Evaluation:
    now: float
    full: bool
    decisions: list[tuple[str, str, Decision]] = field(default_factory=list)
    next_due: float | None = None

    def due(self, at: float | None) -> None:
        # A time already past is being handled by this evaluation's decisions; waking for
        # it again would spin.
        if at is not None and at > self.now and (self.next_due is None or at < self.next_due):
            self.next_due = at


@dataclass(frozen=True)
class Applied:
    nudges: int = 0
    escalations: int = 0


def _tracker(row: dict[str, Any] | None) -> Tracker | None:
    if row is None:
        return None

    def secs(key: str) -> float | None:
        return seconds_from_iso(row[key]) if row[key] else None

    return Tracker(attempts=row["attempts"], first_at=seconds_from_iso(row["first_at"]), last_at=secs("last_at"),
                   last_signature=row["last_signature"], escalated_at=secs("escalated_at"),
                   resolved_at=secs("resolved_at"))


def _row(tracker: Tracker) -> dict[str, Any]:
    def iso(value: float | None) -> str | None:
        # Whole microseconds, as stored: a float round trip must not move first_at by 1 µs.
        return None if value is None else iso_from_ns(round(value * 1_000_000) * 1000)

    return {"attempts": tracker.attempts, "first_at": iso(tracker.first_at), "last_at": iso(tracker.last_at),
            "last_signature": tracker.last_signature, "escalated_at": iso(tracker.escalated_at),
            "resolved_at": iso(tracker.resolved_at)}


def _check_runs(conn: apsw.Connection, pr_list: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    runs = {}
    for pr in pr_list:
        if pr.get("state") != "open" or pr.get("ci_state") != "failing":
            continue
        for check in pr["checks"]:
            if check["status"] == "failed":
                runs[(pr["url"], check["name"])] = prs.check_runs(conn, pr["url"], check["name"], BRAKE_RUNS)
    return runs


def evaluate(conn: apsw.Connection, config: Config, now: float, session_ids: Sequence[str] | None = None) -> Evaluation:
    """Every decision due now for the candidate sessions (or just `session_ids`)."""
    if session_ids is None:
        rows = trackers.candidate_sessions(conn, iso_from_seconds(now - RECENT))
    else:
        rows = [row for row in (sessions.get(conn, sid) for sid in session_ids) if row is not None]
    ids = [row["id"] for row in rows]
    pr_map = prs.for_sessions(conn, ids)
    tracker_rows = trackers.for_sessions(conn, ids)
    stuck_after = config.lifecycle.stuck_after
    result = Evaluation(now, full=session_ids is None)
    for row in rows:
        sid = row["id"]
        view = SessionView(row, pr_map[sid], _check_runs(conn, pr_map[sid]))
        for key, condition in conditions(view, now, stuck_after).items():
            reaction = config.reactions[key]
            tracker = _tracker(tracker_rows.get((sid, key)))
            undeliverable, nudged_before = None, False
            if condition is not None and (tracker is None or tracker.escalated_at is None
                                          or tracker.resolved_at is not None):
                if tracker is not None and tracker.last_signature == condition.signature:
                    undeliverable = nudges.failure(conn, sid, key, condition.signature)
                else:
                    nudged_before = nudges.exists(conn, sid, key, condition.signature)
            decision = decide(condition, tracker, reaction, now, undeliverable=undeliverable,
                              nudged_before=nudged_before)
            if decision is not None:
                result.decisions.append((sid, key, decision))
            result.due(due_at(decision.tracker if decision else tracker, reaction))
        if config.reactions["stuck"].enabled:
            result.due(stuck_due_at(view, stuck_after))
    return result


def apply(conn: apsw.Connection, config: Config, now: float, session_ids: Sequence[str]) -> Applied:
    """Decide again on the facts inside this write transaction, and record every decision."""
    stamp = iso_from_seconds(now)
    sent = paged = 0
    for sid, key, decision in evaluate(conn, config, now, session_ids).decisions:
        tracker = decision.tracker
        if decision.nudge is not None:
            assert tracker.last_signature is not None
            if nudges.add(conn, sid, key, tracker.last_signature, decision.nudge, stamp):
                sent += 1
            else:  # nudged in an earlier episode already: the unique key keeps it to one
                tracker = replace(tracker, attempts=tracker.attempts - 1)
        trackers.save(conn, sid, key, _row(tracker))
        if decision.escalation is not None:
            priority = config.reactions[key].priority
            escalation_id = escalations.add(conn, sid, key, priority, decision.escalation, stamp)
            for notifier in config.routing.get(priority, ()):
                deliveries.add(conn, escalation_id, notifier, stamp)
            paged += 1
            log.info("escalated", extra={"session": sid, "reaction": key, "escalation": escalation_id,
                                         "priority": priority})
    return Applied(nudges=sent, escalations=paged)


def _changed_sessions(conn: apsw.Connection, since: int) -> tuple[int, set[str] | None]:
    """(head seq, the sessions with a change_log row after `since`), or None for "too many: sweep"."""
    head = change_log.head(conn)
    if head - since > MAX_CHANGES:
        return head, None
    return head, change_log.sessions_changed(conn, since, head)


class ReactionEngine:
    """Evaluates the sessions that changed since the last look (their change_log rows), and all
    candidates when a timer falls due, the config changes, or every SWEEP seconds."""

    def __init__(self, db: Database, holder: ConfigHolder, on_recorded: Callable[[Applied], None]) -> None:
        self.db = db
        self.holder = holder
        self.on_recorded = on_recorded
        self.woken = asyncio.Event()  # the job's wake flag
        self._next_due: float | None = None
        self._seen_seq: int | None = None  # None: the next look is a full sweep
        self._next_sweep = 0.0
        self._touched: set[str] = set()

    def wake(self, *_: object) -> None:
        self.woken.set()

    def sweep(self, *_: object) -> None:
        """Look at every candidate next time (the config changed)."""
        self._seen_seq = None
        self.woken.set()

    def touch(self, session_id: str) -> None:
        """Look at this session next time: something the change log does not show changed."""
        self._touched.add(session_id)
        self.woken.set()

    async def step(self) -> float:
        """One evaluation; due again at the earliest timer (a failure makes the next one a full sweep)."""
        try:
            await self.tick()
        except Exception:
            self._seen_seq = None
            raise
        await asyncio.sleep(MIN_GAP)
        return MAX_SLEEP if self._next_due is None else min(MAX_SLEEP, max(0.0, self._next_due - time.time()))

    async def tick(self) -> Applied:
        config, now = self.holder.current, time.time()
        due = self._next_due is not None and now >= self._next_due
        since = self._seen_seq
        touched, self._touched = self._touched, set()

        def look(conn: apsw.Connection) -> tuple[int, Evaluation | None]:
            # One read transaction: the head seq and the facts evaluated are the same snapshot,
            # so a change is either in this evaluation or after `head`.
            if since is None or due or time.monotonic() >= self._next_sweep:
                return change_log.head(conn), evaluate(conn, config, now)
            head, changed = _changed_sessions(conn, since)
            if changed is None:
                return head, evaluate(conn, config, now)
            ids = sorted(changed | touched)
            return head, (evaluate(conn, config, now, ids) if ids else None)

        head, found = await self.db.read(look)
        self._seen_seq = head
        if found is None:
            return Applied()
        if found.full:
            self._next_due = found.next_due
            self._next_sweep = time.monotonic() + SWEEP
        elif found.next_due is not None and (self._next_due is None or found.next_due < self._next_due):
            self._next_due = found.next_due
        if not found.decisions:
            return Applied()
        ids = sorted({sid for sid, _, _ in found.decisions})
        applied = await self.db.write(lambda conn: apply(conn, config, time.time(), ids))
        if applied.nudges or applied.escalations:
            self.on_recorded(applied)
        return applied
