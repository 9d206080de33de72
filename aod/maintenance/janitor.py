"""The retention janitor: old events and change_log rows go, in small batches, on the writer.

Each batch is one `db.write`, so ingest requests queued meanwhile commit between batches
instead of waiting for the whole prune; each batch raises `meta.retention_floor` in its own
transaction, so a stream replaying from a cursor sees the floor move with the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aod.config import RetentionConfig
from aod.storage import meta, retention
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds

log = logging.getLogger("aod.retention")
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class PruneReport:
    dry_run: bool
    events_before: str
    change_log_before: str
    events: int
    change_log: int
    floor_before: int
    floor_after: int
    waiting_for_forward: bool  # old rows kept because the team store does not have them yet

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def cutoffs(now: float, options: RetentionConfig) -> tuple[str, str]:
    """(events received before, change_log rows stamped before), each in its column's format."""
    events_before = iso_from_seconds(now - options.events_days * DAY)
    # change_log.at has milliseconds ("...:05.123Z"), events.received_at microseconds.
    changes_before = iso_from_seconds(now - options.change_log_days * DAY)[:23] + "Z"
    return events_before, changes_before


async def prune(db: Database, options: RetentionConfig, *, dry_run: bool, now: float | None = None) -> PruneReport:
    events_before, changes_before = cutoffs(time.time() if now is None else now, options)
    if dry_run:
        plan = await db.read(lambda c: retention.plan(c, events_before, changes_before))
        return PruneReport(True, events_before, changes_before, plan.events, plan.changes,
                           plan.floor_before, plan.floor_after, plan.held)
    floor_before = await db.read(meta.retention_floor)
    events = changes = 0
    floor = floor_before
    limit = options.batch_size
    held = False
    while True:
        batch = await db.write(lambda c: retention.prune_batch(c, events_before, changes_before, limit))
        events += batch.events
        changes += batch.changes
        floor = batch.floor
        held = held or batch.held
        if batch.events < limit and batch.changes < limit:
            break
    if held:
        log.warning("retention waits for the forwarder: old rows it has not shipped to the team store stay",
                    extra={"floor": floor})
    return PruneReport(False, events_before, changes_before, events, changes, floor_before, floor, held)


class Janitor:
    def __init__(self, db: Database, options: Callable[[], RetentionConfig]) -> None:
        self._db = db
        # A getter, not a value: a reloaded config's retention applies from the next round.
        self._options = options

    async def step(self) -> float:
        """Prune now; due again in `retention.interval` (a failed prune is retried sooner, by the job)."""
        options = self._options()
        report = await prune(self._db, options, dry_run=False)
        if report.events or report.change_log:
            log.info("pruned", extra=report.as_json())
        return options.interval
