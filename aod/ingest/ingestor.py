"""The async side of ingest: parse, locate projects off the loop, and hand each request to the writer.

A request's prepared items go to the writer once, as a batched write: the writer's group commit
is the only batching, and it stores every ingest request of one transaction in one call, so
sessions touched by several requests are read and updated once. Each request is answered only
after the transaction holding its items committed; a large one is written alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import apsw

from aod.ingest.envelope import Envelope, InvalidItem, parse_envelope
from aod.ingest.normalize import EventColumns, dead_letter_text, event_columns
from aod.ingest.recent_keys import RecentKeys
from aod.ingest.service import IngestSettings, Prepared, Rejected, Request, Summary, ingest, prepare
from aod.sessions.facts import FactWriter
from aod.sessions.projects import ProjectLocation, locate
from aod.storage.database import Database
from aod.storage.health import classify
from aod.timefmt import now_iso

__all__ = ["Ingestor", "Summary"]

log = logging.getLogger("aod.ingest")
Parse = Callable[[object], Envelope]
YIELD_EVERY = 64


class Ingestor:
    def __init__(self, db: Database, settings: IngestSettings, facts: FactWriter) -> None:
        self.db = db
        self.settings = settings
        self.facts = facts  # the one writer of sessions: every event's facts and status go through it
        self._locations: dict[str | None, ProjectLocation] = {}
        # The dedup window; only ever touched inside write functions, i.e. on the writer thread.
        self._recent = RecentKeys(settings.dedup_window)
        self.observer: Callable[[Summary], None] | None = None  # the metrics: what each request came to

    def configure(self, settings: IngestSettings) -> None:
        """A reloaded config: the next transaction uses it."""
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
                columns = event_columns(envelope.payload, envelope.agent)
                project = await self._locate(envelope, columns)
                items.append(prepare(index, envelope, project, self.settings, columns=columns))
            except InvalidItem as exc:
                items.append(Rejected(index, str(exc), bodies[index] if bodies else dead_letter_text(raw)))
                continue
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # Let the loop answer committed requests meanwhile: else a large request holds
                # every acknowledgement back while it is prepared.
                await asyncio.sleep(0)
        summary = await self._store(Request(items, source)) if items else Summary()
        if self.observer is not None:
            self.observer(summary)
        return summary

    def _write(self, conn: apsw.Connection, requests: list[Request]) -> list[Summary]:
        """The writer thread's call for every ingest request of one transaction."""
        return ingest(conn, requests, self.settings, self.facts, now=now_iso(), recent=self._recent)

    async def _store(self, request: Request) -> Summary:
        try:
            return await self.db.write_batched(self._write, request, weight=len(request.items))
        except Exception as exc:
            # The COMMIT itself may have failed after every item went through: the keys the
            # request recorded must go before its items are tried again. Should even that
            # fail, the request must still be answered.
            with contextlib.suppress(Exception):
                await self.db.write(lambda conn: self._recent.forget(request.token))
            # A full disk or read-only database would fail each item alone just the same:
            # that is answered now (507), not retried one item at a time.
            if classify(exc) is not None:
                raise
            log.warning("ingest batch failed; storing the request item by item", exc_info=True)
        now = now_iso()
        (summary,) = await self.db.write(lambda conn: self._isolated(conn, request, now))
        return summary

    def _isolated(self, conn: apsw.Connection, request: Request, now: str) -> list[Summary]:
        # Every item in a savepoint of its own: one that still fails becomes a dead letter.
        return ingest(conn, [request], self.settings, self.facts, now=now, recent=self._recent, isolate=True)

    async def _locate(self, envelope: Envelope, columns: EventColumns) -> ProjectLocation:
        cwd = envelope.payload.get("cwd")
        if not isinstance(cwd, str):
            # An agent that names it otherwise (Cursor: workspace_roots), read by its module.
            cwd = columns.cwd
        found = self._locations.get(cwd)
        if found is None:
            # Walking up for .git touches the file system: not on the event loop.
            found = await asyncio.to_thread(locate, cwd)
            if len(self._locations) > 4096:
                self._locations.clear()
            self._locations[cwd] = found
        return found

