"""The storage spine: group commit, failure isolation, durability, WAL reads, the lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import apsw
import pytest

from aod.config import StorageConfig
from aod.storage.connection import open_connection
from aod.storage.database import Database, Storage, open_storage
from aod.storage.lock import DataDirBusy, DataDirLock
from tests.conftest import HELPERS, REPO, run_aod
from tests.helpers.rows import count_events, insert_event, seed_session


@pytest.fixture
async def storage(data_dir: Path) -> AsyncIterator[Storage]:
    st = await open_storage(data_dir)
    await st.db.write(seed_session)
    yield st
    if st.lock.held:
        await st.close()


def _fresh_count(db_path: Path, uid: str | None = None) -> int:
    """Count through a connection of its own, so nothing cached in the daemon's can help."""
    c = open_connection(db_path)
    try:
        return count_events(c, uid)
    finally:
        c.close()


async def test_group_commit_uses_far_fewer_transactions(storage: Storage) -> None:
    db = storage.db
    before = db.writer_stats.transactions
    await asyncio.gather(*(db.write(lambda c, i=i: insert_event(c, f"u{i}")) for i in range(1000)))
    transactions = db.writer_stats.transactions - before
    assert transactions <= 100, f"1000 concurrent writes took {transactions} transactions"
    assert await db.read(count_events) == 1000


async def test_each_write_returns_its_result_after_commit(storage: Storage) -> None:
    db = storage.db

    async def one(i: int) -> None:
        row_id = await db.write(lambda c: insert_event(c, f"c{i}"))
        assert isinstance(row_id, int)
        # Committed means visible to a connection that did not exist when the write ran.
        assert await asyncio.to_thread(_fresh_count, db.path, f"c{i}") == 1

    await asyncio.gather(*(one(i) for i in range(50)))


async def test_a_failing_write_fails_alone(storage: Storage) -> None:
    db = storage.db
    await db.write(lambda c: insert_event(c, "taken"))

    def half_then_fail(c: apsw.Connection) -> None:
        insert_event(c, "half-done")
        raise ValueError("boom")

    writes = [db.write(lambda c, i=i: insert_event(c, f"n{i}")) for i in range(200)]
    writes.insert(50, db.write(half_then_fail))
    writes.insert(120, db.write(lambda c: insert_event(c, "taken")))  # unique violation
    results = await asyncio.gather(*writes, return_exceptions=True)

    assert isinstance(results[50], ValueError) and str(results[50]) == "boom"
    assert isinstance(results[120], apsw.ConstraintError)
    ok = [r for i, r in enumerate(results) if i not in (50, 120)]
    assert all(isinstance(r, int) for r in ok)
    assert db.writer_stats.largest_batch > 1, "the failures must share a transaction with others"
    assert await db.read(lambda c: count_events(c, "half-done")) == 0, "a failed write's own rows roll back"
    assert await db.read(count_events) == 201


async def test_commit_listener_runs_on_the_loop_after_commit(storage: Storage) -> None:
    db = storage.db
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []

    def on_commit() -> None:
        seen.append((threading.get_ident(), _fresh_count(db.path)))

    unsubscribe = db.add_commit_listener(on_commit)
    await db.write(lambda c: insert_event(c, "l1"))
    assert seen == [(loop_thread, 1)]
    unsubscribe()
    await db.write(lambda c: insert_event(c, "l2"))
    assert len(seen) == 1


async def test_reads_are_not_blocked_by_a_long_write(storage: Storage) -> None:
    db = storage.db
    await db.write(lambda c: insert_event(c, "before"))
    inside = threading.Event()
    release = threading.Event()

    def long_write(c: apsw.Connection) -> None:
        insert_event(c, "during")
        inside.set()
        release.wait(10)

    write = asyncio.ensure_future(db.write(long_write))
    assert await asyncio.to_thread(inside.wait, 5)
    counts = await asyncio.wait_for(asyncio.gather(*(db.read(count_events) for _ in range(20))), 5)
    assert not write.done(), "the write transaction must still be open while the reads ran"
    assert counts == [1] * 20, "readers see the last committed snapshot, not the open write"
    release.set()
    await write
    assert await db.read(count_events) == 2


async def test_close_commits_everything_queued(data_dir: Path) -> None:
    st = await open_storage(data_dir)
    await st.db.write(seed_session)
    pending = [asyncio.ensure_future(st.db.write(lambda c, i=i: insert_event(c, f"q{i}"))) for i in range(300)]
    await asyncio.sleep(0)
    await st.close()
    assert all(p.done() and not p.exception() for p in pending)
    assert _fresh_count(st.db.path) == 300


async def test_no_sqlite_call_runs_on_the_loop_thread(data_dir: Path) -> None:
    threads: set[int] = set()

    def trace(conn: apsw.Connection) -> None:
        conn.exec_trace = lambda cursor, sql, bindings: threads.add(threading.get_ident()) or True

    apsw.connection_hooks.append(trace)
    try:
        st = await open_storage(data_dir)
        await st.db.write(seed_session)
        await asyncio.gather(*(st.db.write(lambda c, i=i: insert_event(c, f"t{i}")) for i in range(50)))
        assert await st.db.read(count_events) == 50
        await st.close()
    finally:
        apsw.connection_hooks.remove(trace)
    assert threads, "the tracer saw no statements"
    assert threading.get_ident() not in threads


def test_acknowledged_writes_survive_sigkill(data_dir: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, str(HELPERS / "crash_writer.py"), str(data_dir), "32"],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        acked: list[str] = []
        while len(acked) < 3000:
            line = child.stdout.readline()
            assert line, "the writer died before it was killed"
            acked.append(line.strip())
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # lines written before the kill was delivered were acknowledged too
        acked.extend(line for line in rest.splitlines() if line)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    c = open_connection(data_dir / "aod.db")
    try:
        stored = {row[0] for row in c.execute("SELECT uid FROM events")}
    finally:
        c.close()
    missing = [uid for uid in acked if uid not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    # The lock died with the process: the data dir can be taken again.
    with DataDirLock(data_dir):
        pass


def test_second_process_gets_a_clear_error(data_dir: Path, aod_env: dict[str, str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, str(HELPERS / "hold_lock.py"), str(data_dir)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env)
        assert result.returncode == 2
        assert "in use by another aod process" in result.stderr
        assert f"pid {holder.pid}" in result.stderr
        assert not (data_dir / "aod.db").exists(), "nothing may be migrated under another process's lock"
        with pytest.raises(DataDirBusy):
            DataDirLock(data_dir).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env).returncode == 0


async def test_open_storage_refuses_a_locked_data_dir(storage: Storage, data_dir: Path) -> None:
    with pytest.raises(DataDirBusy):
        await open_storage(data_dir)


async def test_synchronous_full_is_applied(data_dir: Path) -> None:
    st = await open_storage(data_dir, StorageConfig(synchronous="full"))
    try:
        level = await st.db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        mode = await st.db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        fks = await st.db.read(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0])
    finally:
        await st.close()
    assert (level, mode, fks) == (2, "wal", 1)


async def test_readers_cannot_write(storage: Storage) -> None:
    with pytest.raises(apsw.ReadOnlyError):
        await storage.db.read(lambda c: insert_event(c, "sneaky"))


async def test_database_open_requires_migrated_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    apsw.Connection(str(path)).close()
    db = await Database.open(path)
    try:
        with pytest.raises(apsw.SQLError):
            await db.write(lambda c: insert_event(c, "x"))
    finally:
        await db.close()


def test_checkpointer_keeps_the_wal_bounded_under_continuous_writes(db_path: Path) -> None:
    from aod.storage.checkpointer import Checkpointer

    writer = open_connection(db_path)
    checkpointer = Checkpointer(db_path, threshold_pages=50, reset_pages=200)
    checkpointer.attach(writer)
    try:
        with writer:
            seed_session(writer)
        wal = Path(str(db_path) + "-wal")
        largest = 0
        for tx in range(300):  # ~9,600 rows of 1 KB: thousands of WAL pages if never reset
            with writer:
                for i in range(32):
                    insert_event(writer, f"k{tx}-{i}", "x" * 1000)
            checkpointer.after_commit(writer)
            largest = max(largest, wal.stat().st_size)
    finally:
        checkpointer.close()
        writer.close()
    assert checkpointer.checkpoints > 0, "the background checkpointer never ran"
    page = 4096
    assert largest < 600 * page, f"WAL grew to {largest / page:.0f} pages"


async def test_writer_survives_a_write_that_raises_base_exception(storage: Storage) -> None:
    def exits(c: apsw.Connection) -> None:
        insert_event(c, "exit")
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        await storage.db.write(exits)
    assert await storage.db.write(lambda c: insert_event(c, "after")) > 0
    assert await storage.db.read(count_events) == 1


async def test_write_after_close_is_refused(data_dir: Path) -> None:
    from aod.storage.writer import WriterClosed

    st = await open_storage(data_dir)
    await st.close()
    with pytest.raises(WriterClosed):
        await st.db.write(seed_session)
