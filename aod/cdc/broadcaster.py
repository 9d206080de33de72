"""Fan-out of published changes to stream subscribers through bounded per-subscriber queues.

`publish` never waits: it appends the same batch object to every subscriber's queue (frames
are encoded once, by whoever built the batch). A subscriber that already holds `limit` rows it
has not taken is ended at once — and when its handler is blocked writing to a client that stopped
reading, its `cut` callback aborts that connection, since such a write never returns on its own —
so one slow client never holds up the poller, the writer or the other clients. It reconnects and
catches up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence

from aod.cdc.frames import StreamItem

log = logging.getLogger("aod.stream")



class Batch:
    """One publish: rows in seq order, and their frames joined once for every subscriber."""

    __slots__ = ("_blob", "first", "items", "last")

    def __init__(self, items: Sequence[StreamItem]) -> None:
        self.items = items
        self.first = items[0].seq
        self.last = items[-1].seq
        self._blob: bytes | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def blob(self) -> bytes:
        if self._blob is None:
            self._blob = b"".join(item.frame for item in self.items)
        return self._blob


class SubscriptionEnded(Exception):
    """The subscription stopped: `reason` is "overflow" (too slow) or "closed" (shutdown)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Subscription:
    __slots__ = ("_batches", "_ended", "_limit", "_pending", "_ping", "_waiter", "busy", "cut")

    def __init__(self, limit: int) -> None:
        self._batches: deque[Batch] = deque()
        self._pending = 0
        self._limit = limit
        self._ping = False
        self._ended: str | None = None
        self._waiter: asyncio.Future[None] | None = None
        # Set by the stream handler: how to drop its connection, and whether it is mid-write
        # (a write to a client that stopped reading never returns on its own).
        self.cut: Callable[[], None] | None = None
        self.busy = False

    @property
    def ended(self) -> str | None:
        return self._ended

    async def get(self) -> tuple[list[Batch], bool]:
        """Every batch queued so far and whether a ping is due; waits while there is neither."""
        while True:
            if self._ended is not None:
                raise SubscriptionEnded(self._ended)
            if self._batches or self._ping:
                batches = list(self._batches)
                self._batches.clear()
                self._pending = 0
                ping, self._ping = self._ping, False
                return batches, ping
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _offer(self, batch: Batch) -> bool:
        """Queue `batch`; False when that would pass the limit (the subscription then ends)."""
        self._pending += len(batch)
        if self._pending > self._limit:
            self._end("overflow")
            return False
        self._batches.append(batch)
        self._wake()
        return True

    def _request_ping(self) -> None:
        self._ping = True
        self._wake()

    def _end(self, reason: str) -> None:
        if self._ended is not None:
            return
        self._ended = reason
        self._batches.clear()
        self._wake()
        if self.busy and self.cut is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self.cut()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Broadcaster:
    def __init__(self, queue_size: int, ping_interval: float) -> None:
        self.queue_size = queue_size
        self.ping_interval = ping_interval
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self._pinger: asyncio.Task[None] | None = None
        self.cut_count = 0

    def configure(self, queue_size: int, ping_interval: float) -> None:
        """A reloaded config: new subscriptions get the new queue size (a connected client keeps
        the one it was given); pings follow the new interval from now on."""
        self.queue_size = queue_size
        if ping_interval != self.ping_interval:
            self.ping_interval = ping_interval
            if self._pinger is not None and not self._closed:
                self._pinger.cancel()  # it may be half-way through a much longer wait
                self._pinger = asyncio.create_task(self._ping_forever(), name="stream-ping")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        """Start the ping ticker: one timer for all subscribers, not one per connection."""
        if self._pinger is None:
            self._pinger = asyncio.create_task(self._ping_forever(), name="stream-ping")

    def subscribe(self) -> Subscription:
        sub = Subscription(self.queue_size)
        if self._closed:
            sub._end("closed")
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, items: Sequence[StreamItem]) -> None:
        if not items:
            return
        batch = Batch(items)
        overflowed = [sub for sub in self._subscribers if not sub._offer(batch)]
        for sub in overflowed:
            self._subscribers.discard(sub)
            self.cut_count += 1
            log.warning("stream client cut: its queue is full", extra={"queue_size": self.queue_size})

    async def close(self) -> None:
        """End every subscription now (shutdown): idle streams finish, blocked writes are aborted."""
        self._closed = True
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        subscribers, self._subscribers = self._subscribers, set()
        for sub in subscribers:
            sub._end("closed")

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            for sub in tuple(self._subscribers):
                sub._request_ping()
