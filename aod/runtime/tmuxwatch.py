"""Pane exits as events: one tmux control-mode client (`tmux -C attach-session`) whose
notifications say when a window, a session or the server went away.

It only wakes the reaper, which then probes as always (one `list-panes`): a notification names
windows, not panes, and the probe stays the one source of what is alive. The client attaches to
the session of a watched pane with `no-output` (the agents' output never reaches aod),
`ignore-size` (it never resizes anyone's window) and `read-only`. It hears `%window-close` and
`%layout-change` for windows of that session, `%unlinked-window-close` and `%sessions-changed`
for every other one, and `%exit` when its own session ends (then it attaches anew at the
reaper's next sync). What it cannot hear — a pane of a split window in another session, a dead
pane kept by remain-on-exit — waits for the reaper's periodic probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from aod.runtime import tmux

log = logging.getLogger("aod.runtime.watch")

# Notifications after which a watched pane may be gone.
WAKING = (b"%window-close", b"%unlinked-window-close", b"%sessions-changed", b"%session-closed",
          b"%layout-change", b"%window-pane-changed", b"%exit")
# A client that never got attached (no such session, an old tmux) is not started again before
# this much time has passed since its start, so a failing tmux is never a busy loop. One that was
# attached (its session ended) is replaced at once.
RESTART_GAP = 5.0
ATTACHED = b"%session-changed"  # what a control client hears first once it is attached


class TmuxWatch:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._started = -RESTART_GAP
        self._retry: asyncio.TimerHandle | None = None
        self._attached = False  # whether the newest client got attached

    def _retry_now(self) -> None:
        self._retry = None
        self._on_change()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def sync(self, panes: Iterable[str]) -> None:
        """Keep one client attached while any pane is watched, none when none is."""
        wanted = sorted(set(panes))
        if not wanted:
            await self.close()
            return
        if self.running:
            return
        wait = self._started + RESTART_GAP - time.monotonic()
        if wait > 0 and not self._attached:
            # Too soon after the last start: ask again then, not at the reaper's next interval.
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(wait, self._retry_now)
            return
        self._started, self._attached = time.monotonic(), False
        try:
            # stdin stays open: a control client reads its commands there and exits at EOF.
            self._proc = await asyncio.create_subprocess_exec(
                tmux.TMUX, "-C", "attach-session", "-f", "no-output,ignore-size,read-only", "-t", wanted[0],
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.debug("cannot start a tmux control client", extra={"error": str(exc)})
            return
        self._reader = asyncio.create_task(self._read(self._proc), name="tmux-watch")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                if line.startswith(WAKING):
                    self._on_change()
                elif line.startswith(ATTACHED):
                    self._attached = True
        except (OSError, ValueError):  # ValueError: a line over the reader's limit
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc is self._proc:
            self._on_change()  # its session ended, or the server: look at once

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        proc, reader = self._proc, self._reader
        self._proc = self._reader = None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if proc is not None:
            await proc.wait()
