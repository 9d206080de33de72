"""WAL checkpoints on a thread and connection of their own.

SQLite's built-in auto-checkpoint runs inside the COMMIT that crosses the threshold, so the
writer (and every caller waiting on its batch) would pay for copying pages back into the
database file. Here the writer's WAL hook only signals; the copying happens beside it.
A PASSIVE checkpoint never takes the write lock, so it does not stall the writer either.

Under continuous writes a checkpoint beside the writer never catches up with the last frame,
and SQLite only restarts the WAL from its beginning once every frame is copied back: the file
would grow without bound. So once the WAL passes `reset_pages`, the writer itself runs one
PASSIVE checkpoint between two transactions; the background thread has already copied nearly
everything, so this catch-up is short, and the next transaction restarts the WAL.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import apsw

from aod.storage.connection import open_connection
from aod.storage.health import note_errno

THRESHOLD_PAGES = 1000
RESET_PAGES = 4000


class Checkpointer:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "normal",
        threshold_pages: int = THRESHOLD_PAGES,
        reset_pages: int = RESET_PAGES,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._threshold = threshold_pages
        self._reset_pages = reset_pages
        self._on_error = on_error
        self._writer_catch_up = False
        self._backfilled = 0  # WAL frames already copied back by the last checkpoint
        # Two checkpoints at once make one fail with SQLITE_BUSY; the writer's catch-up must
        # not be the one that loses, or the WAL never restarts.
        self._checkpointing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="aod-checkpointer", daemon=True)
        self._thread.start()

    def attach(self, writer: apsw.Connection) -> None:
        """Take over checkpointing from `writer` (call before the writer thread starts)."""
        writer.wal_autocheckpoint(0)
        writer.set_wal_hook(self._on_commit)

    def _on_commit(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        if pages < self._backfilled:  # the WAL restarted from its beginning
            self._backfilled = 0
        # Count frames not yet copied back, not the WAL's size: under steady writes the WAL
        # stays above the threshold, and waking on size alone ran a checkpoint (and its fsync)
        # after every commit, which cut small-batch ingest to a third.
        if pages - self._backfilled >= self._threshold:
            self._wake.set()
        if pages >= self._reset_pages:
            self._writer_catch_up = True
        return apsw.SQLITE_OK

    def after_commit(self, writer: apsw.Connection) -> None:
        """Run on the writer thread between transactions."""
        if self._writer_catch_up:
            self._writer_catch_up = False
            # BusyError: another process is checkpointing; the hook asks again after the next commit.
            with self._checkpointing, contextlib.suppress(apsw.BusyError):
                writer.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)

    def _run(self) -> None:
        conn = open_connection(self._path, synchronous=self._synchronous)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    with self._checkpointing:
                        _, self._backfilled = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
                    self.checkpoints += 1
                except apsw.Error as exc:
                    # Busy (another process checkpoints), a full disk (the file cannot grow), I/O
                    # trouble: the next commit retries; the health state hears of the disk.
                    if self._on_error is not None:
                        self._on_error(note_errno(exc, conn))
        finally:
            conn.close()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
