"""systemd's notify protocol (sd_notify(3)), stdlib only: one datagram per message to NOTIFY_SOCKET.

`READY=1` once /readyz would answer 200, `STATUS=` every few seconds, `WATCHDOG=1` at half
WATCHDOG_USEC while a writer round trip still completes, `STOPPING=1` on a stop signal, and
`EXTEND_TIMEOUT_USEC=` while migrations run. Without NOTIFY_SOCKET every send is a no-op, so
the daemon calls these unconditionally.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import apsw

from aod.jobs import Job
from aod.storage import sessions
from aod.storage.database import Database

log = logging.getLogger("aod.sd_notify")
T = TypeVar("T")

STATUS_PERIOD = 5.0
# Each EXTEND_TIMEOUT_USEC grants this much more start-up time; it is repeated at a third of it,
# so a lost datagram or a slow thread hand-off never lets the grant run out mid-migration.
EXTEND_SECONDS = 30.0
EXTEND_PERIOD = EXTEND_SECONDS / 3
RATE_WINDOW = 60.0
ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str | None) -> str | bytes | None:
    """NOTIFY_SOCKET as `sendto` takes it: `@name` is Linux's abstract namespace (a leading NUL)."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other address families are not for a user daemon


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the timeout, as sd_watchdog_enabled(3) advises), or None.

    WATCHDOG_PID names the process systemd watches: another pid means the variables were inherited.
    """
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def status_message(live_sessions: int, events_per_min: float) -> str:
    plural = "" if live_sessions == 1 else "s"
    return f"STATUS={live_sessions} live session{plural}, {events_per_min:.0f} events/min"


def extend_message(seconds: float) -> str:
    return f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}"


class EventRate:
    """Events per minute from samples of a running total (no database read)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._samples: collections.deque[tuple[float, float]] = collections.deque()

    def sample(self, now: float, total: float) -> float:
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()
        start, first = self._samples[0]
        span = now - start
        return 0.0 if span <= 0 else (total - first) * 60.0 / span


class Notifier:
    def __init__(self, address: str | bytes | None) -> None:
        self._address = address
        self._sock: socket.socket | None = None
        self._warned = False
        if address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @classmethod
    def from_environment(cls) -> tuple[Notifier, float | None]:
        """The notifier and the watchdog period, taken out of the environment: the agents, tmux
        and notifier commands the daemon starts must not inherit them and speak for it."""
        env = {key: os.environ.pop(key) for key in ENV_KEYS if key in os.environ}
        return cls(socket_address(env.get("NOTIFY_SOCKET"))), watchdog_interval(env, os.getpid())

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, message: str) -> bool:
        """Send one message; never raises (systemd gone or slow must not hurt the daemon). Thread-safe."""
        if self._sock is None or self._address is None:  # both or neither
            return False
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd", extra={"socket": repr(self._address), "error": str(exc)})
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def while_migrating(notifier: Notifier, open_fn: Callable[[Callable[[], None]], Awaitable[T]]) -> T:
    """Run `open_fn(on_pending)`; once it calls `on_pending` (from its thread, before migrating),
    keep asking systemd for more start-up time until it returns."""
    migrating = threading.Event()

    def on_pending() -> None:
        migrating.set()
        notifier.send(extend_message(EXTEND_SECONDS))

    async def extend() -> float:
        if migrating.is_set():
            notifier.send(extend_message(EXTEND_SECONDS))
        return EXTEND_PERIOD

    extender = Job("sd-extend-timeout", extend, first=EXTEND_PERIOD)
    extender.start()
    try:
        return await open_fn(on_pending)
    finally:
        await extender.stop()


def _nothing(conn: apsw.Connection) -> None:
    """The watchdog's writer round trip: BEGIN IMMEDIATE and COMMIT of nothing (no change_log row)."""


class Watchdog:
    """WATCHDOG=1 every `interval` while a writer round trip completes within it.

    The ping runs on the loop, so a blocked loop sends nothing; a round trip still pending is not
    doubled but waited on, so a wedged writer (a lock held elsewhere, a stuck statement) sends
    nothing either, and systemd restarts the daemon after WatchdogSec.
    """

    def __init__(self, notifier: Notifier, db: Database, interval: float) -> None:
        self._notifier = notifier
        self._db = db
        self._interval = interval
        self._trip: asyncio.Future[None] | None = None
        self._stalled = False

    async def step(self) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        trip = self._trip
        if trip is None or trip.done():
            trip = self._trip = asyncio.ensure_future(self._db.write(_nothing))
        done, _ = await asyncio.wait({trip}, timeout=self._interval)
        healthy = bool(done) and trip.exception() is None
        if healthy:
            self._notifier.send("WATCHDOG=1")
        if healthy == self._stalled:
            self._stalled = not healthy
            if self._stalled:
                log.warning("writer round trip did not complete; withholding the systemd watchdog ping",
                            extra={"interval": self._interval, "error": str(trip.exception()) if done else "timeout"})
            else:
                log.info("writer round trip completes again; watchdog pings resume")
        return max(0.0, self._interval - (loop.time() - started))


class StatusReport:
    """STATUS= for `systemctl status`: live sessions (one count query) and ingested events/min."""

    def __init__(self, notifier: Notifier, db: Database, events_total: Callable[[], float],
                 period: float = STATUS_PERIOD) -> None:
        self._notifier = notifier
        self._db = db
        self._events_total = events_total
        self._period = period
        self._rate = EventRate()

    async def step(self) -> float:
        try:
            live = await self._db.read(sessions.count_live)
        except Exception:  # a failing read only leaves the previous status up
            log.debug("status read failed", exc_info=True)
        else:
            self._notifier.send(status_message(live, self._rate.sample(time.monotonic(), self._events_total())))
        return self._period


def jobs(notifier: Notifier, db: Database, events_total: Callable[[], float],
         interval: float | None) -> list[Job]:
    """The daemon's systemd jobs: none without NOTIFY_SOCKET, the watchdog only when asked for."""
    if not notifier.enabled:
        return []
    found = [Job("sd-status", StatusReport(notifier, db, events_total).step)]
    if interval is not None:
        found.append(Job("sd-watchdog", Watchdog(notifier, db, interval).step))
    return found
