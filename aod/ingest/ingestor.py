"""The async side of ingest: parse items, locate projects off the loop, store in one write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from aod.ingest.envelope import Envelope, InvalidItem, parse_envelope
from aod.ingest.projects import ProjectLocation, locate
from aod.ingest.service import IngestSettings, ItemResult, Prepared, Rejected, ingest
from aod.storage.database import Database
from aod.timefmt import now_iso

Parse = Callable[[object], Envelope]


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    results: list[ItemResult] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


class Ingestor:
    def __init__(self, db: Database, settings: IngestSettings) -> None:
        self.db = db
        self.settings = settings
        self._locations: dict[str | None, ProjectLocation] = {}

    async def ingest(
        self, raw_items: list[object], *, source: str, parse: Parse | None = None, bodies: list[str] | None = None
    ) -> Summary:
        """Store `raw_items`; every item ends up accepted, duplicate, or in dead_letters."""
        received_at = now_iso()
        items: list[Prepared | Rejected] = []
        for index, raw in enumerate(raw_items):
            try:
                envelope = parse(raw) if parse else parse_envelope(raw, received_at=received_at)
            except InvalidItem as exc:
                body = bodies[index] if bodies else orjson.dumps(raw, default=str).decode()
                items.append(Rejected(index, str(exc), body))
                continue
            items.append(Prepared(index, envelope, await self._locate(envelope)))
        now = now_iso()
        results = await self.db.write(lambda conn: ingest(conn, items, self.settings, source=source, now=now))
        summary = Summary(results=results)
        for result in results:
            if result.outcome == "accepted":
                summary.accepted += 1
            elif result.outcome == "duplicate":
                summary.duplicates += 1
            else:
                summary.rejected.append({"index": result.index, "error": result.error})
        return summary

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
