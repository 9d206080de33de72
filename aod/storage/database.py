"""The async face of storage: `await db.write(fn)` and `await db.read(fn)`.

Nothing here touches SQLite on the event loop thread: writes go to the writer thread, reads
to the reader pool, and opening/closing run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import apsw

from aod.config import DB_FILENAME, StorageConfig
from aod.storage.checkpointer import Checkpointer
from aod.storage.connection import open_connection
from aod.storage.health import StorageHealth, classify, note_errno
from aod.storage.lock import DataDirLock
from aod.storage.migrate import migrate
from aod.storage.readers import ReaderPool
from aod.storage.writer import BatchFn, Writer, WriterStats

T = TypeVar("T")
ItemT = TypeVar("ItemT")
CommitListener = Callable[[], None]
DEFAULTS = StorageConfig()
log = logging.getLogger("aod.storage")


class Database:
    def __init__(
        self, path: Path, writer: Writer, readers: ReaderPool, checkpointer: Checkpointer, health: StorageHealth,
    ) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._checkpointer = checkpointer
        self.health = health  # full disk / read-only database: what /readyz and /v1/status show
        self._listeners: list[CommitListener] = []

    @classmethod
    async def open(cls, path: Path, options: StorageConfig = DEFAULTS) -> Database:
        """Open an already migrated file. See `open_storage` for the full start-up sequence."""
        return await asyncio.to_thread(cls._open_sync, path, options)

    @classmethod
    def _open_sync(cls, path: Path, options: StorageConfig) -> Database:
        conn = open_connection(path, synchronous=options.synchronous)
        health = StorageHealth(path.parent)
        checkpointer = Checkpointer(path, synchronous=options.synchronous, on_error=health.failed)
        checkpointer.attach(conn)
        db: Database
        writer = Writer(
            conn,
            batch_max=options.batch_max,
            batch_wait=options.batch_wait,
            on_commit=lambda: db._notify_commit(),
            between_transactions=checkpointer.after_commit,
            health=health,
        )
        readers = ReaderPool(path, options.readers, synchronous=options.synchronous)
        db = cls(path, writer, readers, checkpointer, health)
        return db

    async def write(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run `fn(conn)` in a write transaction; returns once that transaction committed.

        `fn` runs on the writer thread, so it must not touch the event loop. Cancelling the
        await does not cancel the write: once queued, it commits (or fails) regardless.
        """
        return await self._writer.submit(fn)

    async def write_batched(self, fn: BatchFn[ItemT, T], item: ItemT, *, weight: int = 1) -> T:
        """Like `write`, but every item of one transaction naming `fn` goes to one `fn(conn, items)`
        call, which returns one result per item; `weight` (a count of rows) bounds a transaction."""
        return await self._writer.submit_batched(fn, item, weight=weight)

    async def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run `fn(conn)` on a reader connection inside one read transaction."""
        return await self._readers.read(fn)

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]:
        """Call `listener()` on the event loop after every commit; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify_commit(self) -> None:
        for listener in tuple(self._listeners):
            listener()

    @property
    def writer_stats(self) -> WriterStats:
        return self._writer.stats

    @property
    def writer(self) -> Writer:
        """For instrumentation only (its observer, its queue depth); writes go through `write`."""
        return self._writer

    async def close(self) -> None:
        """Commit everything already queued, then close all connections."""
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self._writer.close()
        self._readers.close()
        self._checkpointer.close()
        conn = self._writer.connection
        # Fold the WAL back so the file is self-contained for backups and the next open.
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except apsw.BusyError:
            pass
        except apsw.Error as exc:
            # A full disk or read-only file system: every commit is safe in the WAL, which the
            # next open applies; raising here would only leave the connection open.
            log.warning("could not fold the WAL back into the database at close",
                        extra={"error": f"{type(exc).__name__}: {exc}", "storage": classify(note_errno(exc, conn))})
        conn.close()


@dataclass
class Storage:
    """What a process owns while it uses a data dir: the lock and the open database."""

    lock: DataDirLock
    db: Database

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            self.lock.release()


async def open_storage(
    data_dir: Path, options: StorageConfig = DEFAULTS, on_pending: Callable[[], None] | None = None,
) -> Storage:
    """Lock the data dir, migrate with yoyo (stdlib sqlite3, closed again), then open apsw.

    `on_pending` runs on the migration thread before any migration is applied."""

    def prepare() -> DataDirLock:
        lock = DataDirLock(data_dir)
        lock.acquire()
        try:
            result = migrate(db_path(data_dir), on_pending)
            # The data dir is 0700 already; the file itself need not be readable by others either.
            os.chmod(db_path(data_dir), 0o600)
            if result.applied:
                log.info("migrated", extra={"applied": list(result.applied), "schema_version": result.schema_version})
        except BaseException:
            lock.release()
            raise
        return lock

    lock = await asyncio.to_thread(prepare)
    try:
        db = await Database.open(db_path(data_dir), options)
    except BaseException:
        lock.release()
        raise
    return Storage(lock, db)


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_FILENAME
