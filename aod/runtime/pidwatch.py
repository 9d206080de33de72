"""Process exits as events: a pidfd per watched process, readable on the event loop once it exits.

Linux only (`os.pidfd_open`, kernel 5.3+); elsewhere `available()` is false and the reaper's
periodic probe is all there is (macOS could use kqueue EVFILT_PROC: not done, no Mac to test on).
A pidfd pins its process's pid, so once the start time read after opening it matches the
recorded one, the fd cannot turn into another process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable

from aod.runtime import process

log = logging.getLogger("aod.runtime.watch")


def available() -> bool:
    return hasattr(os, "pidfd_open")


class PidWatch:
    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._fds: dict[str, int] = {}  # handle -> pidfd

    async def sync(self, handles: Iterable[str], *, timeout: float) -> None:
        """Watch exactly `handles` ("<pid>" or "<pid>@<start>"); one already gone calls `on_exit`."""
        wanted = set(handles)
        for handle in set(self._fds) - wanted:
            self._forget(handle)
        opened: dict[str, tuple[int, str | None]] = {}
        for handle in wanted - set(self._fds):
            try:
                pid, token = process.parse_handle(handle)
                fd = os.pidfd_open(pid)
            except ValueError:
                continue
            except ProcessLookupError:
                self._on_exit()
                continue
            except OSError as exc:  # ENOSYS on an old kernel, EMFILE: the periodic probe still runs
                log.debug("cannot watch a process", extra={"handle": handle, "error": str(exc)})
                continue
            self._fds[handle] = fd
            opened[handle] = (pid, token)
        if not opened:
            return
        # Opened after the probe saw it alive: make sure the pid was not reused in between.
        try:
            starts = await process.read_starts([pid for pid, _ in opened.values()], timeout=timeout)
        except process.ProbeFailed:
            starts = {}
        loop = asyncio.get_running_loop()
        for handle, (pid, token) in opened.items():
            seen = starts.get(pid)
            if pid in starts and (seen is None or (token is not None and seen.token != token)):
                self._forget(handle)
                self._on_exit()
                continue
            loop.add_reader(self._fds[handle], self._exited, handle)

    def _exited(self, handle: str) -> None:
        self._forget(handle)
        self._on_exit()

    def _forget(self, handle: str) -> None:
        fd = self._fds.pop(handle, None)
        if fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)

    def close(self) -> None:
        for handle in list(self._fds):
            self._forget(handle)

    @property
    def watched(self) -> set[str]:
        return set(self._fds)
