"""One batching layer: each ingest request goes to the writer once, and the writer's group commit
stores every ingest request of a transaction in one call (sessions read and updated once), writes
a large request alone, and falls back to storing item by item when a transaction fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import apsw
import orjson
import pytest

from aod.ingest.ingestor import Ingestor
from aod.ingest.service import IngestSettings, Summary
from aod.sessions.facts import FactWriter
from aod.storage.database import Database, Storage, open_storage
from tests.conftest import FIXTURES

SETTINGS = IngestSettings(max_payload_bytes=65536, dedup_window=5.0)
FACTS = FactWriter(lambda: 600.0)


@pytest.fixture
async def storage(data_dir: Path) -> AsyncIterator[Storage]:
    st = await open_storage(data_dir)
    yield st
    await st.close()


class _Gate:
    """Holds the writer thread inside a transaction until everything under test is queued."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.entered = threading.Event()
        self.open = threading.Event()

    def _hold(self, _conn: apsw.Connection) -> bool:
        self.entered.set()
        return self.open.wait(10)

    @classmethod
    async def holding(cls, db: Database) -> _Gate:
        gate = cls(db)
        gate.held = asyncio.ensure_future(db.write(gate._hold))
        assert await asyncio.to_thread(gate.entered.wait, 10)
        return gate

    async def release_when_queued(self, count: int) -> None:
        for _ in range(1000):
            if self.db.writer.queue_depth >= count:
                break
            await asyncio.sleep(0.005)
        assert self.db.writer.queue_depth == count
        self.open.set()
        assert await self.held


def _event(uid: str, *, tool_use_id: str | None = None, session: str = "agent-1") -> dict[str, Any]:
    payload = orjson.loads((FIXTURES / "PreToolUse.json").read_bytes())
    payload.update(session_id=session, tool_use_id=tool_use_id or f"toolu-{uid}", cwd="/nowhere/proj")
    return {"uid": uid, "agent": "claude-code", "payload": payload}


async def _count(db: Database, sql: str, *args: object) -> int:
    return await db.read(lambda c: c.execute(sql, args).fetchone()[0])


# --- the writer ------------------------------------------------------------------------------------


async def test_batched_writes_of_one_transaction_are_one_call_with_every_item(storage: Storage) -> None:
    db = storage.db
    calls: list[list[int]] = []

    def write(_conn: apsw.Connection, items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    gate = await _Gate.holding(db)
    pending = [asyncio.ensure_future(db.write_batched(write, i, weight=1)) for i in range(5)]
    plain = asyncio.ensure_future(db.write(lambda c: c.execute("SELECT 7").fetchone()[0]))
    await gate.release_when_queued(6)
    assert await asyncio.gather(*pending) == [0, 10, 20, 30, 40]
    assert await plain == 7
    assert calls == [[0, 1, 2, 3, 4]]


async def test_a_heavy_write_goes_alone_and_weight_bounds_a_transaction(storage: Storage) -> None:
    db = storage.db
    calls: list[list[str]] = []

    def write(_conn: apsw.Connection, items: list[str]) -> list[str]:
        calls.append(items)
        return items

    gate = await _Gate.holding(db)
    # Weights as ingest gives them (events per request): 5000 a transaction, 128 or more alone.
    weights = {"a": 10, "b": 10, "bulk": 500} | {f"s{n}": 120 for n in range(45)}
    pending = [asyncio.ensure_future(db.write_batched(write, name, weight=w)) for name, w in weights.items()]
    before = db.writer_stats.transactions
    await gate.release_when_queued(len(weights))
    assert await asyncio.gather(*pending) == list(weights)
    small = [f"s{n}" for n in range(45)]
    assert calls == [["a", "b"], ["bulk"], small[:41], small[41:]]  # 41 * 120 <= 5000 < 42 * 120
    assert db.writer_stats.transactions - before == 4 + 1  # and the gate's own


async def test_a_batched_call_that_raises_fails_its_requests_and_no_other(storage: Storage) -> None:
    db = storage.db

    def broken(_conn: apsw.Connection, items: list[int]) -> list[int]:
        raise RuntimeError("a bug")

    gate = await _Gate.holding(db)
    failing = [asyncio.ensure_future(db.write_batched(broken, i)) for i in range(3)]
    plain = asyncio.ensure_future(db.write(lambda c: c.execute("SELECT 1").fetchone()[0]))
    await gate.release_when_queued(4)
    for future in failing:
        with pytest.raises(RuntimeError, match="a bug"):
            await future
    assert await plain == 1


# --- the ingestor on it ----------------------------------------------------------------------------


async def test_requests_on_one_session_in_one_transaction_update_it_once(storage: Storage) -> None:
    db = storage.db
    ingestor = Ingestor(db, SETTINGS, FACTS)
    # The session exists first: what follows can only update it.
    assert (await ingestor.ingest([_event("first")], source="test")).accepted == 1
    await db.write(lambda c: c.execute(  # counts every UPDATE of a session row from here on
        "CREATE TABLE session_updates (id TEXT); CREATE TRIGGER count_updates AFTER UPDATE ON sessions"
        " BEGIN INSERT INTO session_updates VALUES (NEW.id); END"))
    gate = await _Gate.holding(db)
    requests = [asyncio.ensure_future(ingestor.ingest([_event(f"u{n}")], source="test")) for n in range(10)]
    before = db.writer_stats.transactions
    await gate.release_when_queued(10)
    summaries: list[Summary] = await asyncio.gather(*requests)
    assert [s.body() for s in summaries] == [{"accepted": 1, "duplicates": 0, "rejected": []}] * 10
    assert db.writer_stats.transactions - before == 1 + 1  # and the gate's own
    assert await _count(db, "SELECT count(*) FROM session_updates") == 1
    assert await _count(db, "SELECT count(*) FROM events") == 11


async def test_the_dedup_window_spans_the_requests_of_one_transaction(storage: Storage) -> None:
    db = storage.db
    ingestor = Ingestor(db, SETTINGS, FACTS)
    gate = await _Gate.holding(db)
    # A re-fired hook: new uid, same content, in another request of the same transaction.
    same = [asyncio.ensure_future(ingestor.ingest([_event(uid, tool_use_id="toolu-same")], source="test"))
            for uid in ("fired", "refired")]
    await gate.release_when_queued(2)
    # Which of the two is queued first is up to the threads that locate their project.
    outcomes = sorted((s.accepted, s.duplicates) for s in await asyncio.gather(*same))
    assert outcomes == [(0, 1), (1, 0)]
    assert await _count(db, "SELECT count(*) FROM events") == 1


async def test_a_failing_transaction_stores_the_good_items_and_dead_letters_the_bad_one(storage: Storage) -> None:
    db = storage.db
    # A real SQLite failure that only one item meets (a bug would look the same to ingest).
    await db.write(lambda c: c.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.uid = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"))
    ingestor = Ingestor(db, SETTINGS, FACTS)
    gate = await _Gate.holding(db)
    bad = asyncio.ensure_future(ingestor.ingest([_event("good-1"), _event("poison"), _event("good-2")], source="test"))
    other = asyncio.ensure_future(ingestor.ingest([_event("good-3")], source="test"))
    await gate.release_when_queued(2)
    summary, other_summary = await asyncio.gather(bad, other)
    # The retry is no duplicate of the rolled-back attempt: its dedup keys were forgotten.
    assert (summary.accepted, summary.duplicates) == (2, 0)
    assert summary.rejected == [{"index": 1, "error": "could not store: ConstraintError: poisoned row"}]
    assert other_summary.body() == {"accepted": 1, "duplicates": 0, "rejected": []}
    stored = await db.read(lambda c: sorted(r[0] for r in c.execute("SELECT uid FROM events")))
    assert stored == ["good-1", "good-2", "good-3"]
    letters = await db.read(lambda c: c.execute("SELECT source, error FROM dead_letters").fetchall())
    assert letters == [("test", "could not store: ConstraintError: poisoned row")]


async def test_a_request_with_no_items_writes_nothing(storage: Storage) -> None:
    db = storage.db
    before = db.writer_stats.transactions
    assert (await Ingestor(db, SETTINGS, FACTS).ingest([], source="test")).body() == {"accepted": 0, "duplicates": 0, "rejected": []}
    assert db.writer_stats.transactions == before
