"""The poller and one client's feed over a real database file, in process (no HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import apsw
import pytest

from aod.cdc.broadcaster import Broadcaster
from aod.cdc.cursor import Cursor, StreamFilter
from aod.cdc.feed import Feed
from aod.cdc.poller import PAGE, TICK, Poller
from aod.cli.client import EventStreamParser
from aod.config import StorageConfig
from aod.jobs import Job
from aod.storage import meta
from aod.storage.database import Database, open_storage
from tests.helpers.rows import insert_event, seed_session


@pytest.fixture
async def db(data_dir: Path) -> AsyncIterator[Database]:
    storage = await open_storage(data_dir, StorageConfig())
    await storage.db.write(seed_session)
    yield storage.db
    await storage.close()


class Client:
    """Collects what a feed sends, parsed like a client would."""

    def __init__(self) -> None:
        self.parser = EventStreamParser()
        self.events: list[tuple[str, dict]] = []
        self._partial = ""
        self.on_write: list = []

    async def write(self, data: bytes) -> None:
        lines = (self._partial + data.decode()).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if (event := self.parser.feed(line)) is not None:
                self.events.append((event.event, json.loads(event.data)))
        for hook in self.on_write:
            await hook()

    @property
    def seqs(self) -> list[int]:
        return [d["seq"] for e, d in self.events if e != "reset"]


def all_seqs(conn: apsw.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT seq FROM change_log ORDER BY seq")]


async def write_events(db: Database, prefix: str, n: int) -> None:
    for i in range(n):
        await db.write(lambda c, i=i: insert_event(c, f"{prefix}{i}"))


async def wait_for(predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def polling(db: Database, hub: Broadcaster, *, page: int = PAGE, tick: float = TICK) -> AsyncIterator[Poller]:
    """A started poller running on a task of its own, stopped however the test ends."""
    poller = Poller(db, hub, page=page, tick=tick)
    await poller.start()
    job = Job("cdc-poller", poller.step, woken=poller.woken)
    job.start()
    try:
        yield poller
    finally:
        await job.stop()
        poller.stop()


async def test_poller_publishes_each_commit_and_notices_other_connections_on_its_tick(db: Database) -> None:
    hub = Broadcaster(queue_size=1000, ping_interval=60)
    sub = hub.subscribe()
    async with polling(db, hub, page=3, tick=0.05) as poller:
        start = poller.last
        await write_events(db, "p", 7)  # pages of 3: the poller reads until a short page
        seen: list[int] = []
        while len(seen) < 7:
            batches, _ = await asyncio.wait_for(sub.get(), 5)
            seen += [i.seq for b in batches for i in b.items]
        assert seen == list(range(start + 1, start + 8))
        # Another connection (as another process would): no commit listener fires.
        other = apsw.Connection(str(db.path))
        with other:
            insert_event(other, "outside")
        other.close()
        batches, _ = await asyncio.wait_for(sub.get(), 5)
        assert [i.seq for b in batches for i in b.items] == [start + 8]


async def test_with_no_subscriber_the_poller_skips_rows_and_clients_joining_mid_write_miss_nothing(
    db: Database,
) -> None:
    hub = Broadcaster(queue_size=1000, ping_interval=60)
    published: list[int] = []
    publish = hub.publish
    hub.publish = lambda items: (published.extend(i.seq for i in items), publish(items))[1]  # type: ignore[method-assign]
    async with polling(db, hub, tick=0.05) as poller:
        await write_events(db, "unwatched", 5)
        await asyncio.sleep(0.2)  # several of the test's ticks: commits with no one listening wake nothing
        assert published == []  # nobody listened: nothing was read or framed
        assert not poller.woken.is_set()  # and the commits woke nothing: the idle tick skips to the head
        # Clients join one by one while commits keep coming, each from the same old cursor.
        clients: list[Client] = []
        feeds: list[asyncio.Task[str]] = []
        writing = asyncio.create_task(write_events(db, "watched", 40))
        for _ in range(5):
            clients.append(Client())
            feed = Feed(db, hub, StreamFilter(), clients[-1].write, lambda: None, page=3)
            feeds.append(asyncio.create_task(feed.run(Cursor(None, 1))))
            await asyncio.sleep(0.01)
        await writing
        expected = [s for s in await db.read(all_seqs) if s > 1]
        for client in clients:
            await wait_for(lambda client=client: client.seqs[-1:] == expected[-1:])
            assert client.seqs == expected
        await hub.close()
        await asyncio.gather(*feeds)


async def test_feed_replays_in_pages_then_goes_live_without_gap_or_repeat(db: Database) -> None:
    hub = Broadcaster(queue_size=1000, ping_interval=60)
    async with polling(db, hub):
        await write_events(db, "old", 9)
        client = Client()
        writing = asyncio.create_task(write_events(db, "new", 30))  # commits race the replay
        feed = Feed(db, hub, StreamFilter(), client.write, lambda: None, page=2)
        running = asyncio.create_task(feed.run(Cursor(None, 3)))
        await writing
        expected = await db.read(all_seqs)
        await wait_for(lambda: client.seqs[-1:] == expected[-1:])
        assert client.seqs == [s for s in expected if s > 3]
        await hub.close()
        assert await running == "closed"


async def test_replay_that_outruns_its_queue_resubscribes_and_still_misses_nothing(db: Database) -> None:
    hub = Broadcaster(queue_size=2, ping_interval=60)
    async with polling(db, hub, page=1):
        await write_events(db, "old", 6)
        client = Client()

        async def slow_down() -> None:
            # While the replay writes, more commits arrive than the queue holds.
            if len(client.seqs) < 6:
                await write_events(db, f"during{len(client.seqs)}-", 3)

        client.on_write.append(slow_down)
        feed = Feed(db, hub, StreamFilter(), client.write, lambda: None, page=2)
        running = asyncio.create_task(feed.run(Cursor(None, 0)))
        await wait_for(lambda: len(client.seqs) >= 6)
        expected = await db.read(all_seqs)
        await wait_for(lambda: client.seqs[-1:] == expected[-1:])
        assert client.seqs == expected
        assert not running.done()  # the overflow during replay did not end the stream
        await hub.close()
        await running


async def test_floor_rising_during_replay_sends_reset_and_continues_live(db: Database) -> None:
    hub = Broadcaster(queue_size=1000, ping_interval=60)
    async with polling(db, hub):
        await write_events(db, "old", 8)
        client = Client()

        async def prune_once() -> None:
            if len(client.seqs) == 2:  # after the first page: the janitor compacts what is next
                await db.write(lambda c: (c.execute("DELETE FROM change_log WHERE seq <= 6"),
                                          meta.raise_retention_floor(c, 6)))

        client.on_write.append(prune_once)
        feed = Feed(db, hub, StreamFilter(), client.write, lambda: None, page=2)
        running = asyncio.create_task(feed.run(Cursor(None, 1)))
        head = (await db.read(all_seqs))[-1]
        await wait_for(lambda: any(e == "reset" for e, _ in client.events))
        epoch = await db.read(meta.db_epoch)
        assert client.events[2] == ("reset", {"head": f"{epoch}:{head}"})
        assert client.seqs == [2, 3]
        await write_events(db, "live", 1)
        await wait_for(lambda: client.seqs[-1] == head + 1)
        assert client.seqs == [2, 3, head + 1]
        await hub.close()
        await running
