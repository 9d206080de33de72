"""One client's stream: every change after its cursor exactly once, in seq order (DESIGN §3).

Subscribe first, then replay from the database, then go live. The subscription catches every
row the poller publishes from the moment it exists; the replay reads after that moment, so it
reaches at least as far as the poller had published before — together they leave no gap, and
live rows the replay already covered are skipped by seq. Transport-free: the caller passes
`write` (send bytes) and `cut` (drop the connection at once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial

import apsw

from aod.cdc.broadcaster import Broadcaster, Subscription, SubscriptionEnded
from aod.cdc.cursor import Cursor, Start, StreamFilter, start_of
from aod.cdc.frames import PING, RETRY, StreamItem, change_frames, reset_frame
from aod.storage import change_log, meta
from aod.storage.database import Database

REPLAY_PAGE = 500

Write = Callable[[bytes], Awaitable[None]]


class Feed:
    def __init__(
        self, db: Database, broadcaster: Broadcaster, flt: StreamFilter, write: Write, cut: Callable[[], None],
        *, page: int = REPLAY_PAGE,
    ) -> None:
        self._db = db
        self._broadcaster = broadcaster
        self._filter = flt
        self._write = write
        self._cut = cut
        self._page = page
        self._sub = self._subscribe()
        self.covered = 0  # the highest seq this client has been given or shown to be filtered out

    def _subscribe(self) -> Subscription:
        sub = self._broadcaster.subscribe()
        sub.cut = self._cut
        return sub

    async def run(self, cursor: Cursor | None) -> str:
        """Stream until the subscription ends; the reason ("overflow" or "closed")."""
        try:
            await self._send(RETRY)
            await self._open(cursor)
            while self._sub.ended is None:
                batches, ping = await self._sub.get()
                out = []
                for batch in batches:
                    if batch.first > self.covered and self._filter.everything:
                        # The common case, kept free of per-row work: hundreds of clients share it.
                        out.append(batch.blob)
                        self.covered = batch.last
                    elif batch.last > self.covered:
                        out += [item.frame for item in self._fresh(batch.items)]
                if ping:
                    out.append(PING)
                if out:
                    await self._send(b"".join(out))
        except SubscriptionEnded as ended:
            return ended.reason
        finally:
            self._broadcaster.unsubscribe(self._sub)
        return self._sub.ended or "closed"

    async def _open(self, cursor: Cursor | None) -> None:
        page = self._page
        epoch, start, items = await self._db.read(lambda c: _opening(c, cursor, page))
        if start.reset:
            await self._reset(epoch, start.after)
            return
        self.covered = start.after
        if cursor is not None:
            await self._replay(epoch, items)

    async def _replay(self, epoch: str, items: list[StreamItem]) -> None:
        page = self._page
        while True:
            await self._send_items(items)
            if self._sub.ended == "closed":
                return
            if len(items) < page:
                if self._sub.ended != "overflow":
                    return
                # The replay itself outran the queue: take a fresh subscription and read on.
                # This does not read the client any slower than the database can be read.
                self._broadcaster.unsubscribe(self._sub)
                self._sub = self._subscribe()
            floor, head, items = await self._db.read(partial(_page, after=self.covered, page=page, epoch=epoch))
            if floor > self.covered:  # the janitor pruned rows this client still needs
                await self._reset(epoch, head)
                return

    async def _reset(self, epoch: str, head: int) -> None:
        self.covered = head
        await self._send(reset_frame(epoch, head))

    def _fresh(self, batch: Iterable[StreamItem]) -> list[StreamItem]:
        fresh = []
        for item in batch:
            if item.seq <= self.covered:
                continue
            self.covered = item.seq
            if self._filter.everything or self._filter.matches(item.entity, item.session_id):
                fresh.append(item)
        return fresh

    async def _send_items(self, items: list[StreamItem]) -> None:
        frames = [item.frame for item in self._fresh(items)]
        if frames:
            await self._send(b"".join(frames))

    async def _send(self, data: bytes) -> None:
        sub = self._sub
        sub.busy = True
        try:
            await self._write(data)
        finally:
            sub.busy = False


def _opening(conn: apsw.Connection, cursor: Cursor | None, page: int) -> tuple[str, Start, list[StreamItem]]:
    epoch = meta.db_epoch(conn)
    head = change_log.head(conn)
    start = start_of(cursor, epoch=epoch, floor=meta.retention_floor(conn), head=head)
    replay = cursor is not None and not start.reset
    items = change_frames(epoch, change_log.rows_after(conn, start.after, page)) if replay else []
    return epoch, start, items


def _page(conn: apsw.Connection, *, after: int, page: int, epoch: str) -> tuple[int, int, list[StreamItem]]:
    floor = meta.retention_floor(conn)
    return floor, change_log.head(conn), change_frames(epoch, change_log.rows_after(conn, after, page))
