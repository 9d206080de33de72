"""Process exits as events, where the OS offers them.

Linux (`os.pidfd_open`, kernel 5.3+): a pidfd per process, readable on the event loop once it
exits. macOS and the BSDs (`select.kqueue`): one kqueue with an `EVFILT_PROC`/`NOTE_EXIT` filter
per process, the kqueue's fd readable on the loop when any of them exits. Elsewhere `available()`
is false and the reaper's periodic probe is all there is. Both pin the process, not its pid:
once the start time read after registering matches the recorded one, the registration cannot
turn into another process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import sys
from collections.abc import Callable, Iterable
from typing import Protocol

from aod.runtime import process

log = logging.getLogger("aod.runtime.watch")


class _Backend(Protocol):
    """Calls its `fired(pid)` once when a registered process exits."""

    def add(self, pid: int) -> None:
        """Register `pid`; ProcessLookupError when it is already gone, OSError when it cannot."""

    def remove(self, pid: int) -> None: ...

    def close(self) -> None: ...


BACKENDS: dict[str, Callable[[Callable[[int], None]], _Backend]] = {}

if sys.platform == "linux":  # where typeshed (and Python 3.9+) have pidfd_open

    class _Pidfds:
        def __init__(self, fired: Callable[[int], None]) -> None:
            self._fired = fired
            self._fds: dict[int, int] = {}  # pid -> pidfd

        def add(self, pid: int) -> None:
            fd = os.pidfd_open(pid)
            self._fds[pid] = fd
            asyncio.get_running_loop().add_reader(fd, self._ready, pid)

        def _ready(self, pid: int) -> None:
            self.remove(pid)
            self._fired(pid)

        def remove(self, pid: int) -> None:
            fd = self._fds.pop(pid, None)
            if fd is None:
                return
            with contextlib.suppress(Exception):  # no running loop at close
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

        def close(self) -> None:
            for pid in list(self._fds):
                self.remove(pid)

    if hasattr(os, "pidfd_open"):
        BACKENDS["pidfd"] = _Pidfds

if sys.platform != "linux" and sys.platform != "win32":  # where typeshed (and Python) have kqueue

    class _Kqueue:
        def __init__(self, fired: Callable[[int], None]) -> None:
            self._fired = fired
            self._kq: select.kqueue | None = None  # opened with the first process
            self._pids: set[int] = set()

        def add(self, pid: int) -> None:
            if self._kq is None:
                self._kq = select.kqueue()
                asyncio.get_running_loop().add_reader(self._kq.fileno(), self._ready)
            # ESRCH (ProcessLookupError) when the process is gone already.
            self._kq.control([select.kevent(pid, select.KQ_FILTER_PROC, select.KQ_EV_ADD | select.KQ_EV_ONESHOT,
                                            select.KQ_NOTE_EXIT)], 0)
            self._pids.add(pid)

        def _ready(self) -> None:
            if self._kq is None:
                return
            for event in self._kq.control(None, 64, 0):
                if event.ident in self._pids:
                    self._pids.discard(event.ident)  # one-shot: the kernel dropped the filter
                    self._fired(event.ident)

        def remove(self, pid: int) -> None:
            if pid not in self._pids or self._kq is None:
                return
            self._pids.discard(pid)
            with contextlib.suppress(OSError):  # it exited meanwhile: the filter is gone
                self._kq.control([select.kevent(pid, select.KQ_FILTER_PROC, select.KQ_EV_DELETE)], 0)

        def close(self) -> None:
            if self._kq is not None:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_reader(self._kq.fileno())
                self._kq.close()
                self._kq = None
            self._pids.clear()

    if hasattr(select, "kqueue"):
        BACKENDS["kqueue"] = _Kqueue


def kind() -> str | None:
    """The backend this OS offers ("pidfd" first, then "kqueue"), or None: polling only."""
    return next(iter(BACKENDS), None)


def available() -> bool:
    return kind() is not None


class PidWatch:
    def __init__(self, on_exit: Callable[[], None], *, backend: str | None = None) -> None:
        chosen = backend or kind()
        if chosen is None or chosen not in BACKENDS:
            raise ValueError(f"process exits cannot be watched with {chosen!r} here; offered: {sorted(BACKENDS)}")
        self.backend = chosen
        self._on_exit = on_exit
        self._backend = BACKENDS[chosen](self._exited)
        self._pids: dict[str, int] = {}  # handle -> pid, for every watched handle

    async def sync(self, handles: Iterable[str], *, timeout: float) -> None:
        """Watch exactly `handles` ("<pid>" or "<pid>@<start>"); one already gone calls `on_exit`."""
        wanted = set(handles)
        for handle in set(self._pids) - wanted:
            self._forget(handle)
        opened: dict[str, tuple[int, str | None]] = {}
        for handle in wanted - set(self._pids):
            try:
                pid, token = process.parse_handle(handle)
                if pid not in self._pids.values():
                    self._backend.add(pid)
            except ValueError:
                continue
            except ProcessLookupError:
                self._on_exit()
                continue
            except OSError as exc:  # ENOSYS on an old kernel, EMFILE: the periodic probe still runs
                log.debug("cannot watch a process", extra={"handle": handle, "error": str(exc)})
                continue
            self._pids[handle] = pid
            opened[handle] = (pid, token)
        if not opened:
            return
        # Registered after the probe saw it alive: make sure the pid was not reused in between.
        try:
            starts = await process.read_starts([pid for pid, _ in opened.values()], timeout=timeout)
        except process.ProbeFailed:
            starts = {}
        for handle, (pid, token) in opened.items():
            seen = starts.get(pid)
            if pid in starts and (seen is None or (token is not None and seen.token != token)):
                self._forget(handle)
                self._on_exit()

    def _exited(self, pid: int) -> None:
        for handle in [h for h, p in self._pids.items() if p == pid]:
            del self._pids[handle]
        self._on_exit()

    def _forget(self, handle: str) -> None:
        pid = self._pids.pop(handle, None)
        if pid is not None and pid not in self._pids.values():
            self._backend.remove(pid)

    def close(self) -> None:
        self._pids.clear()
        self._backend.close()

    @property
    def watched(self) -> set[str]:
        return set(self._pids)
