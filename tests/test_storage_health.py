"""A full disk or read-only database as a state: what SQLite raises (measured on real file
systems), how it is classified, recorded, mapped to 507, and left again."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import apsw
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aod.api.errors import json_errors
from aod.jobs import Job
from aod.storage import dead_letters, health, meta, probe
from aod.storage.connection import open_connection
from aod.storage.database import Storage, open_storage
from aod.storage.health import StorageHealth, classify, note_errno
from aod.storage.migrate import migrate
from aod.storage.probe import StorageProbe
from aod.timefmt import now_iso
from tests.helpers.mounts import ext4, tmpfs

# --- classify: pure ------------------------------------------------------------------------------


def _io_error(code: int | None) -> apsw.IOError:
    exc = apsw.IOError("disk I/O error")
    if code is not None:
        exc.system_errno = code  # what note_errno copies from the connection
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (apsw.FullError("database or disk is full"), "full"),
        (apsw.ReadOnlyError("attempt to write a readonly database"), "readonly"),
        (_io_error(errno.ENOSPC), "full"),
        (_io_error(errno.EDQUOT), "full"),
        (_io_error(errno.EROFS), "readonly"),
        (_io_error(errno.EIO), None),
        (_io_error(None), None),  # no OS error known: a plain I/O error, not a full disk
        (OSError(errno.ENOSPC, "No space left on device"), "full"),
        (OSError(errno.EROFS, "Read-only file system"), "readonly"),
        (PermissionError(errno.EACCES, "Permission denied"), None),
        (apsw.BusyError("database is locked"), None),
        (apsw.ConstraintError("UNIQUE constraint failed"), None),
        (ValueError("bad input"), None),
    ],
)
def test_classify(exc: BaseException, kind: str | None) -> None:
    assert classify(exc) == kind


def test_note_errno_copies_the_connections_os_error_only_onto_io_errors() -> None:
    conn = apsw.Connection(":memory:")
    io_error, busy = apsw.IOError("disk I/O error"), apsw.BusyError("database is locked")
    note_errno(io_error, conn)
    note_errno(busy, conn)
    assert io_error.system_errno == 0  # nothing failed on this connection yet
    assert not hasattr(busy, "system_errno")
    conn.close()
    late = apsw.IOError("disk I/O error")
    note_errno(late, conn)  # a closed connection has no errno to give; that is no error
    assert not hasattr(late, "system_errno")


# --- the state: pure -----------------------------------------------------------------------------


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aod.storage" and r.levelno == level]


def test_one_warning_when_the_state_begins_one_info_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "HEADROOM_BYTES", 0)  # any free space is enough here
    state = StorageHealth(tmp_path)
    assert state.snapshot() == {"state": "ok", "since": None, "last_error": None}
    state.wrote()  # nothing to end
    caplog.set_level(logging.INFO, "aod.storage")
    for _ in range(5):
        assert state.failed(apsw.FullError("database or disk is full")) == "full"
    assert state.failed(ValueError("not about the disk")) is None
    snap = state.snapshot()
    assert snap["state"] == "full" and snap["since"] and "FullError: database or disk is full" in str(snap["last_error"])
    assert state.degraded
    assert len(_messages(caplog, logging.WARNING)) == 1
    state.wrote()
    assert state.snapshot()["state"] == "ok" and state.snapshot()["last_error"] is None
    state.wrote()
    assert len(_messages(caplog, logging.INFO)) == 1


def test_read_only_ends_with_a_write_whatever_the_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "HEADROOM_BYTES", 1 << 62)
    state = StorageHealth(tmp_path)
    state.failed(_io_error(errno.EROFS))
    assert state.state == "readonly"
    state.wrote()
    assert state.state == "ok"


# --- the API maps it: every route, no database needed ---------------------------------------------


async def test_json_errors_answer_507_for_storage_errors_and_500_for_others() -> None:
    errors = {
        "/full": apsw.FullError("database or disk is full"),
        "/readonly": apsw.ReadOnlyError("attempt to write a readonly database"),
        "/erofs": _io_error(errno.EROFS),
        "/enospc-file": OSError(errno.ENOSPC, "No space left on device"),
        "/other": apsw.IOError("disk I/O error"),
    }

    async def handler(request: web.Request) -> web.Response:
        raise errors[request.path]

    app = web.Application(middlewares=[json_errors])
    for path in errors:
        app.router.add_post(path, handler)
    async with TestClient(TestServer(app)) as client:
        got = {}
        for path in errors:
            resp = await client.post(path)
            got[path] = (resp.status, (await resp.json())["error"]["code"])
    assert got == {
        "/full": (507, "storage_full"),
        "/readonly": (507, "storage_readonly"),
        "/erofs": (507, "storage_readonly"),
        "/enospc-file": (507, "storage_full"),
        "/other": (500, "internal"),
    }


# --- a read-only database, for real: the writer's connection refuses writes ----------------------


@pytest.fixture
async def storage(data_dir: Path) -> AsyncIterator[Storage]:
    s = await open_storage(data_dir)
    yield s
    await s.close()


def _dead_letter(body: str = "x") -> Callable[[apsw.Connection], int]:
    return lambda conn: dead_letters.add(conn, "test", "test", body, now_iso())


async def test_a_read_only_database_is_reported_and_the_probe_sees_it_end(storage: Storage) -> None:
    db = storage.db
    # PRAGMA query_only makes SQLite itself refuse every write on the writer's connection. Set
    # from a worker thread while the writer thread waits for work (never on the loop).
    writer_conn = db._writer.connection
    change_log_before = await db.read(lambda c: c.execute("SELECT count(*) FROM change_log").fetchone()[0])
    await asyncio.to_thread(writer_conn.execute, "PRAGMA query_only=ON")
    with pytest.raises(apsw.ReadOnlyError):
        await db.write(_dead_letter())
    assert db.health.state == "readonly"
    assert await probe.probe(db) is False
    assert await db.read(dead_letters.count) == 0  # reads go on
    await asyncio.to_thread(writer_conn.execute, "PRAGMA query_only=OFF")
    # No client writes: only the probe job can notice the end.
    job = Job("storage-probe", StorageProbe(db, interval=0.02).step)
    job.start()
    try:
        for _ in range(250):
            if not db.health.degraded:
                break
            await asyncio.sleep(0.02)
    finally:
        await job.stop()
    assert db.health.snapshot()["state"] == "ok"
    # The probe leaves nothing behind: no meta row, nothing in the stream.
    assert await db.read(lambda c: meta.get(c, "storage_probe")) is None
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM change_log").fetchone()[0]) == change_log_before
    await db.write(_dead_letter())  # the writer thread lived through it
    assert await db.read(dead_letters.count) == 1


# --- a full tmpfs, for real ---------------------------------------------------------------------


def _fill(path: Path, leave: int) -> None:
    """Write a file that leaves `leave` bytes free on its file system."""
    free = health.free_bytes(path.parent)
    assert free is not None
    with open(path, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))


@contextlib.contextmanager
def _connections(*conns: apsw.Connection) -> Iterator[None]:
    try:
        yield
    finally:
        for c in conns:
            c.close()


def test_sqlite_on_a_full_tmpfs_fails_the_commit_and_the_checkpoint_with_full_error(short_dir: Path) -> None:
    with tmpfs(short_dir / "fs", "2m") as fs:
        path = fs / "aod.db"
        migrate(path)
        writer, checkpointer = open_connection(path), open_connection(path)
        writer.wal_autocheckpoint(0)  # as aod runs it: checkpoints only on their own connection
        with _connections(writer, checkpointer):
            failed: tuple[str, apsw.Error] | None = None
            for _ in range(200):
                writer.execute("BEGIN IMMEDIATE")
                try:
                    writer.execute("INSERT INTO dead_letters (source, received_at, error, body) VALUES ('t', '', '', ?)",
                                   ("x" * 20000,))
                except apsw.Error as exc:
                    failed = ("statement", exc)
                    break
                try:
                    writer.execute("COMMIT")
                except apsw.Error as exc:
                    failed = ("commit", exc)
                    break
            assert failed is not None, "the 2 MiB file system never filled"
            stage, exc = failed
            assert (stage, type(exc)) == ("commit", apsw.FullError)
            assert writer.getautocommit()  # SQLite rolled the transaction back itself
            assert classify(note_errno(exc, writer)) == "full"
            # Copying WAL pages back needs the database file to grow: the checkpoint fails too.
            with pytest.raises(apsw.FullError) as checkpoint:
                checkpointer.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            assert classify(checkpoint.value) == "full"
            assert writer.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_a_full_disk_fails_writes_marks_full_and_ends_only_with_room_again(short_dir: Path) -> None:
    with tmpfs(short_dir / "fs", "8m") as fs:
        storage = await open_storage(fs)
        try:
            db = storage.db
            filler = fs / "filler"
            await asyncio.to_thread(_fill, filler, 256 << 10)
            body = "y" * 30000
            for _ in range(100):
                try:
                    await db.write(_dead_letter(body))
                except apsw.FullError:
                    break
            else:
                raise AssertionError("the disk never filled")
            assert db.health.state == "full"
            with pytest.raises(apsw.FullError):  # fails at once again, no hang, no retry loop
                await asyncio.wait_for(db.write(_dead_letter(body * 4)), 10)
            stored = await db.read(dead_letters.count)  # reads go on
            # A small write may still commit into WAL space a failed commit left allocated;
            # with no room on the disk that must not end the state (or it flips per request).
            await probe.probe(db)
            assert db.health.state == "full"
            await asyncio.to_thread(filler.unlink)
            assert await probe.probe(db) is True
            assert db.health.snapshot() == {"state": "ok", "since": db.health.since, "last_error": None}
            await db.write(_dead_letter(body * 4))
            assert await db.read(dead_letters.count) == stored + 1
        finally:
            await storage.close()
        conn = open_connection(fs / "aod.db")
        with _connections(conn):
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# --- a file system that goes read-only under the open database, for real ------------------------


def test_sqlite_on_a_file_system_gone_read_only_fails_with_io_error_erofs(short_dir: Path) -> None:
    with ext4(short_dir / "disk.img", short_dir / "fs") as fs:
        path = fs.path / "aod.db"
        migrate(path)
        writer, checkpointer = open_connection(path), open_connection(path)
        writer.wal_autocheckpoint(0)
        with _connections(writer, checkpointer):
            writer.execute("INSERT INTO dead_letters (source, received_at, error) VALUES ('t', '', 'before')")
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO dead_letters (source, received_at, error) VALUES ('t', '', 'pending')")
            fs.trigger_error()
            assert fs.is_read_only()
            with pytest.raises(apsw.IOError) as commit:
                writer.execute("COMMIT")
            assert commit.value.extendedresult == apsw.SQLITE_IOERR_WRITE
            assert writer.getautocommit()
            note_errno(commit.value, writer)
            assert commit.value.system_errno == errno.EROFS
            assert classify(commit.value) == "readonly"
            with pytest.raises(apsw.IOError) as checkpoint:
                checkpointer.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            assert checkpoint.value.extendedresult == apsw.SQLITE_IOERR_FSYNC
            assert classify(note_errno(checkpoint.value, checkpointer)) == "readonly"
            # Reads go on from what is there.
            assert checkpointer.execute("SELECT error FROM dead_letters").fetchall() == [("before",)]
