"""The async side of ingest: parse, locate projects off the loop, and store many requests at once.

Concurrent requests queue here and one writer call stores all that are waiting (ingest-level
group commit): sessions touched by several requests are read and updated once, and each
request is still answered only after the transaction holding its items committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aod.ingest.envelope import Envelope, InvalidItem, parse_envelope
from aod.ingest.normalize import dead_letter_text
from aod.ingest.projects import ProjectLocation, locate
from aod.ingest.recent_keys import RecentKeys
from aod.ingest.service import IngestSettings, ItemResult, Prepared, Rejected, Request, ingest, prepare
from aod.storage.database import Database
from aod.storage.health import classify
from aod.timefmt import now_iso

log = logging.getLogger("aod.ingest")
Parse = Callable[[object], Envelope]
# Bounds one transaction, so a flood of bulk requests cannot hold the writer for long.
MAX_ITEMS_PER_WRITE = 5000
WRITES_IN_FLIGHT = 2
ALONE_ITEMS = 128
YIELD_EVERY = 64


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass
class _Waiting:
    request: Request
    future: asyncio.Future[list[ItemResult]]


class Ingestor:
    def __init__(self, db: Database, settings: IngestSettings) -> None:
        self.db = db
        self.settings = settings
        self._locations: dict[str | None, ProjectLocation] = {}
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._writes: set[asyncio.Task[None]] = set()
        # The dedup window; only ever touched inside write functions, i.e. on the writer thread.
        self._recent = RecentKeys(settings.dedup_window)
        self.observer: Callable[[Summary], None] | None = None  # the metrics: what each request came to

    def configure(self, settings: IngestSettings) -> None:
        """A reloaded config: the next write uses it (a write in flight keeps the one it took)."""
        self.settings = settings
        self._recent.window = settings.dedup_window

    async def ingest(
        self, raw_items: list[object], *, source: str, parse: Parse | None = None, bodies: list[str] | None = None
    ) -> Summary:
        """Store `raw_items`; every item ends up accepted, duplicate, or in dead_letters."""
        received_at = now_iso()
        items: list[Prepared | Rejected] = []
        for index, raw in enumerate(raw_items):
            try:
                envelope = parse(raw) if parse else parse_envelope(raw, received_at=received_at)
                items.append(prepare(index, envelope, await self._locate(envelope), self.settings))
            except InvalidItem as exc:
                items.append(Rejected(index, str(exc), bodies[index] if bodies else dead_letter_text(raw)))
                continue
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # Let the loop hand the writer its next batch and answer committed requests
                # meanwhile: else a large request keeps the writer idle while it is prepared.
                await asyncio.sleep(0)
        results = await self._store(Request(items, source))
        summary = _summarize(results)
        if self.observer is not None:
            self.observer(summary)
        return summary

    async def _store(self, request: Request) -> list[ItemResult]:
        future: asyncio.Future[list[ItemResult]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(request, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="ingest-flush")
        return await future

    async def _flush(self) -> None:
        # Two small writes in flight: while one commits, the next batch already waits in the
        # writer's queue, so the writer never idles while the loop sends acknowledgements. A
        # large batch takes both slots and is written alone: sharing a transaction would put
        # each write in a savepoint, whose sub-journal copies every page it changes.
        while self._queue:
            await self._slots.acquire()
            waiting, size = [], 0
            while self._queue and (not waiting or size + len(self._queue[0].request.items) <= MAX_ITEMS_PER_WRITE):
                size += len(self._queue[0].request.items)
                waiting.append(self._queue.pop(0))
            slots = 1
            if size >= ALONE_ITEMS:
                for _ in range(WRITES_IN_FLIGHT - 1):
                    await self._slots.acquire()
                slots = WRITES_IN_FLIGHT
            task = asyncio.create_task(self._write(waiting))
            task.add_done_callback(lambda _, n=slots: [self._slots.release() for _ in range(n)])
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, waiting: list[_Waiting]) -> None:
        requests = [w.request for w in waiting]
        now = now_iso()
        token = object()
        try:
            results = await self.db.write(
                lambda conn: ingest(conn, requests, self.settings, now=now, recent=self._recent, token=token))
        except Exception as exc:
            # A full disk or read-only database would fail each request alone just the same:
            # those are answered now (507), not retried one transaction at a time.
            storage = classify(exc) is not None
            if not storage:
                log.warning("ingest batch failed; storing its requests one by one", exc_info=True)
            # The COMMIT itself may have failed after every item went through: the keys the
            # batch recorded must go before its items are tried again. Should even that fail,
            # the requests must still be answered.
            with contextlib.suppress(Exception):
                await self.db.write(lambda conn: self._recent.forget(token))
            for w in waiting:
                if not storage:
                    await self._write_isolated(w)
                elif not w.future.done():
                    w.future.set_exception(exc)
            return
        for w, result in zip(waiting, results, strict=True):
            if not w.future.done():
                w.future.set_result(result)

    async def _write_isolated(self, w: _Waiting) -> None:
        now = now_iso()
        try:
            (result,) = await self.db.write(lambda conn: ingest(
                conn, [w.request], self.settings, now=now, recent=self._recent, token=object(), isolate=True))
        except Exception as exc:  # the database itself is failing: the client must not think it is stored
            if not w.future.done():
                w.future.set_exception(exc)
            return
        if not w.future.done():
            w.future.set_result(result)

    async def _locate(self, envelope: Envelope) -> ProjectLocation:
        cwd = envelope.payload.get("cwd")
        cwd = cwd if isinstance(cwd, str) else None
        found = self._locations.get(cwd)
        if found is None:
            # Walking up for .git touches the file system: not on the event loop.
            found = await asyncio.to_thread(locate, cwd)
            if len(self._locations) > 4096:
                self._locations.clear()
            self._locations[cwd] = found
        return found


def _summarize(results: list[ItemResult]) -> Summary:
    summary = Summary()
    for result in results:
        if result.outcome == "accepted":
            summary.accepted += 1
        elif result.outcome == "duplicate":
            summary.duplicates += 1
        else:
            summary.rejected.append({"index": result.index, "error": result.error})
    return summary
