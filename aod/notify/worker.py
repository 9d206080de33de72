"""The delivery worker: sends pending deliveries (the escalation outbox) and records the outcome.

Each delivery is sent by its own task, so one slow webhook does not hold back the others. A
failed attempt is retried with exponential backoff (`notifiers.<name>.backoff`, doubling, at
most an hour apart) up to `max_attempts`; the outcome is recorded on the row (attempts,
next_attempt_at, last_error, sent_at). A restart finds every unsent delivery still pending.
Between a receiver accepting a page and the row being marked sent there is one commit: a
SIGKILL exactly there re-sends that page after the restart (at least once, never lost), with
the same `Idempotency-Key` / delivery id, so the receiver can tell.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import aiohttp

from aod import __version__
from aod.config_reload import ConfigHolder
from aod.faults import Faults
from aod.notify.notifiers import NotifyError, send
from aod.storage import deliveries
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, now_iso, seconds_from_iso

log = logging.getLogger("aod.notify")

MAX_BACKOFF = 3600.0
MAX_SLEEP = 30.0
IN_FLIGHT = 8
STOP_GRACE = 1.0


def backoff(base: float, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2·base, 4·base, …"""
    factor: int = 2 ** max(0, attempts - 1)
    return min(MAX_BACKOFF, base * factor)


def page_for(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON a notifier sends: the escalation, its session, and which delivery this is."""
    return {
        "escalation": {k: row[k] for k in ("session_id", "reaction", "priority", "message", "created_at")}
        | {"id": row["escalation_id"]},
        "session": {
            "id": row["session_id"], "status": row["session_status"], "title": row["session_title"],
            "project_id": row["session_project_id"], "branch": row["session_branch"],
            "workspace_path": row["session_workspace_path"],
        },
        "delivery": {"id": row["id"], "notifier": row["notifier"], "attempt": row["attempts"] + 1},
        "aod_version": __version__,
    }


class DeliveryWorker:
    def __init__(self, db: Database, holder: ConfigHolder, faults: Faults | None = None) -> None:
        self.db = db
        self.holder = holder
        self.faults = faults or Faults()
        self.woken = asyncio.Event()  # the job's wake flag
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._http: aiohttp.ClientSession | None = None

    def wake(self, *_: object) -> None:
        self.woken.set()

    async def step(self) -> float:
        """Start every delivery that is due; due again at the next one's time."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        await self._start_due()
        next_due = await self.db.read(deliveries.next_due_at)
        wait = MAX_SLEEP if next_due is None else seconds_from_iso(next_due) - time.time()
        # Past due means in flight right now: its task wakes the job when it is done.
        return MAX_SLEEP if wait <= 0 else min(MAX_SLEEP, wait)

    async def _start_due(self) -> None:
        now = now_iso()
        for row in await self.db.read(lambda conn: deliveries.due(conn, now)):
            if row["id"] not in self._tasks:
                task = asyncio.create_task(self._deliver(row))
                self._tasks[row["id"]] = task
                task.add_done_callback(functools.partial(self._forget, row["id"]))

    def _forget(self, delivery_id: int, _done: asyncio.Task[None]) -> None:
        self._tasks.pop(delivery_id, None)

    async def stop(self) -> None:
        """Give deliveries in flight a moment to finish, then cancel them (they stay pending)."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _deliver(self, row: dict[str, Any]) -> None:
        async with self._slots:
            try:
                await self._attempt(row)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery failed unexpectedly", extra={"delivery": row["id"]})
            finally:
                self.woken.set()  # its next try may now be the earliest

    async def _attempt(self, row: dict[str, Any]) -> None:
        delivery_id = row["id"]
        if row["attempts"] == 0:
            await self.faults.pause("escalation-recorded")
        notifier = self.holder.current.notifiers.get(row["notifier"])
        if notifier is None:
            await self.db.write(lambda conn: deliveries.fail(
                conn, delivery_id, f"notifier {row['notifier']!r} is no longer configured", attempted=False))
            return
        assert self._http is not None
        try:
            await send(notifier, page_for(row), self._http)
        except NotifyError as exc:
            attempts = row["attempts"] + 1
            error = str(exc)
            if exc.permanent or attempts >= notifier.max_attempts:
                log.warning("delivery failed for good", extra={"delivery": delivery_id, "notifier": notifier.name,
                                                              "attempts": attempts, "error": error})
                await self.db.write(lambda conn: deliveries.fail(conn, delivery_id, error))
                return
            later = iso_from_seconds(time.time() + backoff(notifier.backoff, attempts))
            log.info("delivery attempt failed; will retry", extra={"delivery": delivery_id, "notifier": notifier.name,
                                                                   "attempts": attempts, "error": error,
                                                                   "next_attempt_at": later})
            await self.db.write(lambda conn: deliveries.retry_later(conn, delivery_id, later, error))
            return
        await self.db.write(lambda conn: deliveries.mark_sent(conn, delivery_id, now_iso()))
        log.info("delivered", extra={"delivery": delivery_id, "escalation": row["escalation_id"],
                                     "notifier": notifier.name})
        await self.faults.pause("delivery-sent")
