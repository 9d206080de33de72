"""Whether the database can be written: "ok", "full" (no space left) or "readonly".

One instance per database holds the state. The writer and the checkpointer report the errors
they meet; a commit that wrote rows clears the state again. `classify` is the one place that
decides which errors mean a full disk or a read-only database: the API maps those to 507.

What SQLite reports (measured with apsw 3.54 on Linux): a tmpfs that fills up fails the COMMIT
(or a statement, once the page cache spills) with `FullError`, and a checkpoint with
`FullError` too, since copying pages back grows the file. A file system gone read-only under
an open database (ext4 `errors=remount-ro`) fails writes with `IOError`
(SQLITE_IOERR_WRITE) and checkpoints with `IOError` (SQLITE_IOERR_FSYNC), the connection's
`system_errno` being EROFS; a connection that cannot write at all raises `ReadOnlyError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import apsw

from aod.timefmt import now_iso

log = logging.getLogger("aod.storage")

Kind = Literal["full", "readonly"]
State = Literal["ok", "full", "readonly"]

# Leaving "full" takes this much free space, or a tenth of a smaller file system. A small write
# can commit on a disk with no byte free (it reuses WAL pages that a failed commit allocated), so
# clearing on any successful commit would flip the state with every request.
HEADROOM_BYTES = 8 << 20

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_IO_ERRORS = (apsw.IOError, apsw.CantOpenError)


def classify(exc: BaseException) -> Kind | None:
    """"full" or "readonly" when `exc` means the database cannot be written for that reason."""
    if isinstance(exc, apsw.FullError):
        return "full"
    if isinstance(exc, apsw.ReadOnlyError):
        return "readonly"
    if isinstance(exc, _IO_ERRORS):
        # SQLite's I/O errors carry no errno; `note_errno` copies the connection's onto them.
        return _by_errno(getattr(exc, "system_errno", None))
    if isinstance(exc, OSError):  # a file aod writes itself (spool, token)
        return _by_errno(exc.errno)
    return None


def _by_errno(code: int | None) -> Kind | None:
    if code in _FULL_ERRNOS:
        return "full"
    if code == errno.EROFS:
        return "readonly"
    return None


def note_errno(exc: BaseException, conn: apsw.Connection) -> BaseException:
    """Copy `conn`'s last OS error onto an apsw I/O error raised by it, for `classify`.

    Call on the thread that ran the failing statement, before that connection runs another.
    """
    if isinstance(exc, _IO_ERRORS) and getattr(exc, "system_errno", None) is None:
        with contextlib.suppress(apsw.Error):  # a closed connection has none
            # Through __dict__: the attribute is aod's own, no apsw exception declares it.
            exc.__dict__["system_errno"] = conn.system_errno
    return exc


def free_bytes(directory: Path) -> int | None:
    """Space an unprivileged process may still use on `directory`'s file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _has_headroom(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return True  # cannot tell: better a state that may flip again than one stuck at "full"
    total = st.f_blocks * st.f_frsize
    if total == 0:  # some virtual file systems report no sizes at all
        return True
    return st.f_bavail * st.f_frsize >= min(HEADROOM_BYTES, total // 10)


class StorageHealth:
    """The state, safe to report from any thread; read it from anywhere."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state: State = "ok"
        self.since: str | None = None  # when the current state began; None: ok since the start
        self.last_error: str | None = None
        self._began = 0.0
        self._lock = threading.Lock()
        # Called (from whichever thread noticed) when the state leaves "ok": the probe waits for it.
        self.on_degraded: Callable[[], object] | None = None

    @property
    def degraded(self) -> bool:
        return self.state != "ok"

    def failed(self, exc: BaseException) -> Kind | None:
        """Record `exc` if it means a full disk or read-only database; returns what it means."""
        kind = classify(exc)
        if kind is None:
            return None
        with self._lock:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.state == kind:
                return kind
            previous, self.state, self.since = self.state, kind, now_iso()
            if previous == "ok":
                self._began = time.monotonic()
        if previous == "ok" and self.on_degraded is not None:
            self.on_degraded()
        # Once per change of state, never per failing request.
        log.warning(
            "the database cannot be written: ingest answers 507 and /readyz 503 until it can",
            extra={"storage": kind, "error": self.last_error, "path": str(self.directory)},
        )
        return kind

    def wrote(self) -> None:
        """A transaction that changed rows committed: the condition is over (for "full", once
        there is headroom again)."""
        state = self.state  # unlocked: a healthy database leaves here at once
        if state == "ok":
            return
        if state == "full" and not _has_headroom(self.directory):
            return
        with self._lock:
            if self.state == "ok":
                return
            previous, self.state, self.since, self.last_error = self.state, "ok", now_iso(), None
            lasted = round(time.monotonic() - self._began, 3)
        log.info("the database is writable again", extra={"storage_was": previous, "lasted_s": lasted})

    def snapshot(self) -> dict[str, str | None]:
        with self._lock:
            return {"state": self.state, "since": self.since, "last_error": self.last_error}
