"""The forwarder: a background job (aod/jobs.py runs its `step`) that ships change_log to the team store.

One step ships one batch: read the change_log rows after the local cursor and the rows they
name (a reader), upsert them in one PostgreSQL transaction (a thread: PostgreSQL never runs on
the event loop), then move the cursor (the writer). The cursor moves only after PostgreSQL
committed, and the upserts are idempotent, so a crash anywhere re-sends at most one batch and
the team store holds every row once. Ingest never waits for any of it: the forwarder only reads
what ingest already committed, and its one write per batch is a single-row update.

PostgreSQL failures go through the circuit breaker: 5 in a row open it, and then nothing is
attempted until `open_for` passed and a single probe batch succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from aod.config import PostgresForwardConfig
from aod.forward.breaker import Breaker
from aod.forward.team_store import TeamStore, target_of
from aod.jobs import Job
from aod.storage import forward
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, parse_iso

log = logging.getLogger("aod.forward")
T = TypeVar("T")

# After a batch, wait this long before the next one unless it was full: commits arriving
# meanwhile make one batch instead of one PostgreSQL transaction each.
LINGER = 0.05
RETRY = 0.5  # between failed attempts while the circuit is still closed
# One attempt (connect + one batch; ~40 ms for 1,000 rows) taking longer than this failed: a
# PostgreSQL that is stopped rather than dead keeps the socket open and never answers.
ATTEMPT_TIMEOUT = 15.0


async def in_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a daemon thread of its own. Not asyncio.to_thread: asyncio.run waits for the
    default executor's threads at exit, so a PostgreSQL that hangs (stopped, not dead) would hold
    a SIGTERM'd daemon for the whole statement timeout; nobody waits for a daemon thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: tuple[T] | BaseException) -> None:
        if future.done():  # the step was cancelled meanwhile (the daemon is stopping)
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[0])

    def run() -> None:
        outcome: tuple[T] | BaseException
        try:
            outcome = (fn(),)  # a tuple: T itself may be an exception object
        except BaseException as exc:
            outcome = exc
        # A closed loop: the daemon is gone, and the answer with it.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="aod-forward", daemon=True).start()
    return await future


class Forwarder:
    def __init__(self, db: Database, options: Callable[[], PostgresForwardConfig],
                 clock: Callable[[], float] = time.monotonic, attempt_timeout: float = ATTEMPT_TIMEOUT) -> None:
        self._db = db
        self._attempt_timeout = attempt_timeout
        self._options = options
        self._clock = clock
        self._store: TeamStore | None = None
        self._target: str | None = None
        self._cursor: int | None = None
        self._usage_cursor: int | None = None
        self._machine_id: str | None = None
        self._released = False
        self._idle = True
        self.breaker = Breaker(options().open_for)
        self.wake: Callable[[], None] = lambda: None  # the job's wake, once it runs
        self.forwarded = 0  # change_log rows shipped since the start
        self.upserted = 0  # team-store rows written since the start
        self.batches = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.last_success_at: str | None = None

    def job(self) -> Job:
        """The job that runs it, woken by local commits (and by `wake`, e.g. after a config reload)."""
        job = Job("forward", self.step)
        self.wake = job.wake
        self._db.add_commit_listener(self.on_commit)
        return job

    def on_commit(self) -> None:
        """After a local commit: an idle forwarder starts a batch; a busy one picks it up at its next step.
        With forwarding off, nothing: a config reload wakes the job when a dsn appears."""
        if self._idle and self._options().dsn:
            self._idle = False
            self.wake()

    async def step(self) -> float | None:
        self._idle = False
        options = self._options()
        if not options.dsn:
            await self._off()
            self._idle = True
            return None
        await self._use(options)
        assert self._store is not None and self._target is not None
        now = self._clock()
        if not self.breaker.allow(now):
            return self.breaker.retry_in(now)
        try:
            return await self._attempt(options, now)
        finally:
            # A local failure (raised on to the job's backoff) must not leave the probe out forever.
            self.breaker.probing = False

    async def _attempt(self, options: PostgresForwardConfig, now: float) -> float | None:
        assert self._store is not None and self._target is not None
        if self._cursor is None or self._machine_id is None or self._usage_cursor is None:
            target = self._target
            self._cursor = await self._db.write(lambda c: forward.start(c, target))
            self._usage_cursor = await self._db.read(forward.usage_cursor)
            self._machine_id = await self._db.read(forward.machine_id)
            self._released = False
        after, usage_after, limit = self._cursor, self._usage_cursor, options.batch_size
        batch = await self._db.read(lambda c: forward.read_batch(c, after, limit, usage_after))
        if not batch.empty:
            store, machine_id = self._store, self._machine_id
            try:
                await self._team_store(lambda: store.upsert(batch, machine_id))
            except (psycopg.Error, OSError, TimeoutError) as exc:
                return self._failed(exc)
            target, at = self._target, iso_from_seconds(time.time())
            await self._db.write(lambda c: forward.advance(c, target, batch, at))
            self._cursor, self._usage_cursor = batch.last_seq, batch.usage_last
            self.forwarded += batch.changes
            self.upserted += batch.row_count
            self.batches += 1
            self.last_success_at = at
        elif self.breaker.state(now) == "half_open":
            # Nothing to ship, but the probe must still reach the team store to close the circuit.
            try:
                await self._team_store(self._store.ping)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                return self._failed(exc)
        if self.breaker.state(now) != "closed":
            log.info("forwarding to the team store again", extra={"target": self._target})
        self.breaker.succeeded()
        if batch.more:
            return 0.0
        if not batch.empty:
            return LINGER
        self._idle = True
        return None

    async def _team_store(self, call: Callable[[], None]) -> None:
        try:
            async with asyncio.timeout(self._attempt_timeout):
                await in_thread(call)
        except TimeoutError:
            # The thread stays blocked on the old connection until PostgreSQL answers; the next
            # attempt gets a store (and a connection) of its own, which that thread never touches.
            assert self._store is not None
            self._store = TeamStore(self._store.dsn)
            raise TimeoutError(f"no answer from the team store within {self._attempt_timeout:g}s") from None

    def _failed(self, exc: BaseException) -> float:
        now = self._clock()
        was = self.breaker.state(now)
        self.breaker.failed(now)
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {str(exc).strip()}"
        self.last_error_at = iso_from_seconds(time.time())
        if self.breaker.state(now) == "open" and was != "open":
            log.warning("team store unreachable: the circuit is open, no attempt for %ss", self.breaker.open_for,
                        extra={"target": self._target, "error": self.last_error, "failures": self.breaker.failures})
        else:
            log.warning("forwarding failed", extra={"target": self._target, "error": self.last_error})
        return max(RETRY, self.breaker.retry_in(now))

    async def _use(self, options: PostgresForwardConfig) -> None:
        self.breaker.open_for = options.open_for
        if self._store is not None and self._store.dsn == options.dsn:
            return
        if self._store is not None:
            store, self._store = self._store, None
            await in_thread(store.close)  # as in _off: PostgreSQL never runs on the event loop
        self._store = TeamStore(options.dsn)
        self._target = target_of(options.dsn)
        self._cursor = self._usage_cursor = None  # a new team store has its own cursors
        self.breaker.succeeded()

    async def _off(self) -> None:
        """Forwarding is not configured: drop the connection, and let retention go on without it."""
        if self._store is not None:
            store, self._store = self._store, None
            await in_thread(store.close)
        self._target = self._cursor = self._usage_cursor = None
        if not self._released:
            if await self._db.write(forward.release):
                log.info("forwarding is off: retention no longer waits for it")
            self._released = True

    async def close(self) -> None:
        if self._store is not None:
            await in_thread(self._store.close)

    def status(self, lag: forward.Lag, keep_days: float, now: float | None = None) -> dict[str, Any]:
        """The `forward` object of /v1/status (and what /metrics and `aod doctor` read); `keep_days`:
        the shorter retention, past which an unforwarded row is one retention waits for."""
        wall = time.time() if now is None else now
        enabled = bool(self._options().dsn)
        lag_seconds = 0.0
        if enabled and lag.rows and lag.oldest_at is not None:
            lag_seconds = max(0.0, round(wall - parse_iso(lag.oldest_at).timestamp(), 3))
        return {
            "enabled": enabled,
            "target": self._target if enabled else None,
            "tenant": self._store.tenant if enabled and self._store is not None else None,
            "circuit": self.breaker.state(self._clock()) if enabled else None,
            "failures_in_a_row": self.breaker.failures,
            "cursor": lag.cursor,
            "head": lag.head,
            "lag_rows": lag.rows if enabled else 0,
            "lag_seconds": lag_seconds if enabled else 0.0,
            "forwarded_rows": self.forwarded,
            "upserted_rows": self.upserted,
            "batches": self.batches,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_success_at": self.last_success_at,
            "retention_waiting": lag_seconds > keep_days * 86400,
            "backfill": None if lag.backfill is None or not enabled else {
                "sent_through": lag.backfill[0], "until": lag.backfill[1]},
        }


def off_status(lag: forward.Lag) -> dict[str, Any]:
    """The `forward` object where no forwarder runs (an app without the daemon's jobs)."""
    return {"enabled": False, "target": None, "tenant": None, "circuit": None, "failures_in_a_row": 0,
            "cursor": lag.cursor, "head": lag.head, "lag_rows": 0, "lag_seconds": 0.0, "forwarded_rows": 0,
            "upserted_rows": 0, "batches": 0, "failures": 0, "last_error": None, "last_error_at": None,
            "last_success_at": None, "retention_waiting": False, "backfill": None}
