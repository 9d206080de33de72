"""The CDC poller: reads new change_log rows on a reader and hands them to the broadcaster.

The database calls `wake` on the event loop after every commit of this process's writer (the
writer resolves its futures with `call_soon_threadsafe`, and the commit listeners run in that
same callback). Writes by another process (a `sqlite3` shell, a restore) wake nobody, so a
tick about once a second (every 30 s while no client is subscribed) compares `PRAGMA data_version`, which changes on a connection when
any other connection committed, and reads only when it moved. Frames are built on the reader
thread, so the loop only fans them out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

import apsw

from aod.cdc.broadcaster import Broadcaster
from aod.cdc.frames import StreamItem, change_frames
from aod.storage import change_log, meta
from aod.storage.database import Database
from aod.storage.rows import scalar_int

log = logging.getLogger("aod.stream")

PAGE = 500
TICK = 1.0
# The tick while no client is subscribed: an idle daemon should not read the database every second.
IDLE_TICK = 30.0
# Reads at most this often: under a stream of small commits one read then serves a handful of
# them (measured: at ~3,000 single-event requests/s, per-commit reads cost ~30 µs of reader
# CPU per event, and each read's thread hand-offs fight ingest for the GIL). Adds at most this
# much to commit-to-client latency.
MIN_GAP = 0.005


class Poller:
    def __init__(self, db: Database, broadcaster: Broadcaster, *, page: int = PAGE, tick: float = TICK) -> None:
        self._db = db
        self._broadcaster = broadcaster
        self._page = page
        self._tick = tick
        self.woken = asyncio.Event()  # the job's wake flag (aod.jobs.Job(woken=...))
        self._by_commit = True  # the next step follows a commit of ours: no data_version look needed
        # data_version is per connection: remember the last value seen on each reader.
        self._versions: dict[int, int] = {}
        self.epoch = ""
        self.last = 0
        self._unlisten: Callable[[], None] | None = None

    async def start(self) -> None:
        """Begin at the head: the stream replays older rows from the database itself."""
        self.epoch, self.last = await self._db.read(lambda c: (meta.db_epoch(c), change_log.head(c)))
        self._unlisten = self._db.add_commit_listener(self.wake)

    def wake(self) -> None:
        self._by_commit = True
        # No one to tell: the idle tick's skip to the head is enough. A commit per few events cost
        # a reader round trip each (14-17 µs of CPU per single ingested event under load); a client
        # that subscribes later replays from the database, and live rows its replay covered are
        # dropped by seq (aod/cdc/feed.py), so starting from a stale `last` loses nothing.
        if self._broadcaster.subscribers:
            self.woken.set()

    def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    async def step(self) -> float:
        """One read of what is new; a failed read loses nothing (`last` did not move), the job retries."""
        by_commit, self._by_commit = self._by_commit, False
        await self._drain(check_version=not by_commit)
        await asyncio.sleep(MIN_GAP)
        # No one to tell: only own commits (which wake it) matter; the skip to the head can wait.
        return self._tick if self._broadcaster.subscribers else IDLE_TICK

    async def _drain(self, *, check_version: bool) -> None:
        if not self._broadcaster.subscribers:
            await self._skip_to_head(check_version=check_version)
            if not self._broadcaster.subscribers:
                return
        while True:
            self.woken.clear()
            items = await self._db.read(partial(self._read, last=self.last, page=self._page, epoch=self.epoch,
                                                check_version=check_version))
            check_version = False
            if items:
                self.last = items[-1].seq
                self._broadcaster.publish(items)
            if len(items) < self._page:
                return

    async def _skip_to_head(self, *, check_version: bool) -> None:
        """With no one subscribed, move past every row without reading or framing it.

        Safe because the subscriber count is looked at again after the head was read, on the
        loop: a client that subscribes after that look replays from the database, whose head is
        at least the one read here, so nothing it needs was skipped.
        """
        self.woken.clear()
        head = await self._db.read(partial(self._head_if_changed, check_version=check_version))
        if head is not None and not self._broadcaster.subscribers:
            self.last = max(self.last, head)

    def _head_if_changed(self, conn: apsw.Connection, *, check_version: bool) -> int | None:
        if not self._moved(conn) and check_version:
            return None
        return change_log.head(conn)

    def _read(self, conn: apsw.Connection, *, last: int, page: int, epoch: str, check_version: bool) -> list[StreamItem]:
        if not self._moved(conn) and check_version:
            return []
        return change_frames(epoch, change_log.rows_after(conn, last, page))

    def _moved(self, conn: apsw.Connection) -> bool:
        """Whether any other connection committed since this reader last looked (remembered now)."""
        version = scalar_int(conn.execute("PRAGMA data_version"))
        moved = self._versions.get(id(conn)) != version
        self._versions[id(conn)] = version
        return moved
