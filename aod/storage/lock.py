"""The single-instance lock that guards a data dir."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "aod.lock"


class DataDirBusy(RuntimeError):
    """Another process holds the data dir."""


class DataDirLock:
    """An exclusive `flock` on `<data_dir>/aod.lock`, held for the life of the process.

    flock (not a pid file) so that a crashed holder releases it automatically: the kernel
    drops the lock when the descriptor closes, SIGKILL included.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirBusy(
                f"data dir {self.path.parent} is in use by another aod process"
                + (f" (pid {holder})" if holder else "")
                + "; stop it first or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
