"""The search indexer: a job that adds the events committed since its cursor to the full-text
index, in one writer transaction per batch (aod/migrations/0011_search_in_batches.sql says why).

A commit wakes it; it then waits GATHER seconds, so the commits of that half second go into few
index transactions (FTS5 pays per transaction: bench/search.py measures ~5 µs of writer CPU an
event in batches of 500 to 5,000, ~47 µs for one event alone), and indexes up to BATCH events;
a full batch is followed by the next at once (a backlog: a burst, the events of an upgraded or
restored file), each its own write, so ingest's commits interleave with them instead of waiting
behind one long transaction (5,000 at once put ~30 ms on ingest's p99). With nothing waiting it
sleeps until the next commit: an idle daemon does no work for it.
"""

from __future__ import annotations

import asyncio
from functools import partial

from aod.jobs import Job
from aod.storage import search
from aod.storage.database import Database

GATHER = 0.5
BATCH = 500  # events per index transaction: ~3 ms of the writer, so ingest commits wait little behind one


class SearchIndexer:
    def __init__(self, db: Database, gather: float = GATHER, batch: int = BATCH) -> None:
        self._db = db
        self._gather = gather
        self._batch = batch
        self.woken = asyncio.Event()
        # A commit since the last look (set at start: events may wait from before it).
        self._dirty = True
        self._gathered = True  # the start looks at once

    def committed(self) -> None:
        """A commit listener (on the event loop): wake the job once per gathering."""
        if not self._dirty:
            self._dirty = True
            self.woken.set()

    async def step(self) -> float | None:
        if not self._gathered:
            self._gathered = True
            return self._gather  # commits meanwhile only mark it dirty: the wait is not cut short
        self._dirty = self._gathered = False  # a commit from here on starts the next gathering
        if not await self._db.read(search.unindexed):
            return None  # (a read: a write would commit, and that commit would wake this again)
        passed = await self._db.write(partial(search.index_next, limit=self._batch))
        if passed >= self._batch:
            self._dirty = self._gathered = True
            return 0.0
        return None


def indexer_job(db: Database) -> Job:
    indexer = SearchIndexer(db)
    db.add_commit_listener(indexer.committed)
    return Job("search-index", indexer.step, woken=indexer.woken)
