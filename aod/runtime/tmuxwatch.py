"""Pane exits as events: one tmux control-mode client (`tmux -C attach-session`) whose
notifications say when a window, a session or the server went away, and an exit watch on each
watched pane's process (`aod.runtime.pidwatch`) for the deaths tmux does not announce.

It only wakes the reaper, which then probes as always (one `list-panes`): the probe stays the one
source of what is alive. The client attaches to the session of a watched pane with `no-output`
(the agents' output never reaches aod), `ignore-size` (it never resizes anyone's window) and
`read-only`. It hears `%window-close` and `%layout-change` for windows of that session,
`%unlinked-window-close`, `%window-pane-changed` and `%sessions-changed` for every other one, and
`%exit` when its own session ends (then it attaches anew at the reaper's next sync). tmux has no
notification for a pane that dies in a split window of another session (only that session's
clients hear `%layout-change`) nor for one that remain-on-exit keeps dead (tmux 3.3: none at
all), so the client also asks tmux, over its own stdin, for the pid of every watched pane
(`list-panes`), and the pane's process exit wakes the reaper: a killed pane's process dies of
the SIGHUP its closed terminal sends. Where no exit watch exists (neither pidfd nor kqueue), those
deaths wait for the reaper's periodic probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from aod.runtime import pidwatch, tmux
from aod.runtime.pidwatch import PidWatch

log = logging.getLogger("aod.runtime.watch")

# Notifications after which a watched pane may be gone.
WAKING = (b"%window-close", b"%unlinked-window-close", b"%sessions-changed", b"%session-closed",
          b"%layout-change", b"%window-pane-changed", b"%exit")
# A client that never got attached (no such session, an old tmux) is not started again before
# this much time has passed since its start, so a failing tmux is never a busy loop. One that was
# attached (its session ended) is replaced at once.
RESTART_GAP = 5.0
ATTACHED = b"%session-changed"  # what a control client hears first once it is attached
# Sent on the client's stdin; its answer comes back as a %begin ... %end block.
ASK_PIDS = b'list-panes -a -F "#{pane_id} #{pane_pid} #{pane_dead}"\n'
PID_TIMEOUT = 5.0  # reading the pane processes' start times (/proc, or ps)


class TmuxWatch:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._started = -RESTART_GAP
        self._retry: asyncio.TimerHandle | None = None
        self._attached = False  # whether the newest client got attached
        self._panes: set[str] = set()  # the watched panes
        self._pane_pids: dict[str, int] = {}  # pane -> its process, as tmux last answered
        self._pids = PidWatch(on_change) if pidwatch.available() else None

    def _retry_now(self) -> None:
        self._retry = None
        self._on_change()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def sync(self, panes: Iterable[str]) -> None:
        """Keep one client attached while any pane is watched, none when none is."""
        wanted = sorted(set(panes))
        self._panes = set(wanted)
        if not wanted:
            await self.close()
            return
        if self.running:
            if self._pids is not None and not self._panes <= set(self._pane_pids):
                self._ask()  # a new pane: learn its process
            else:
                await self._watch_pids()
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
        self._ask()

    def _ask(self) -> None:
        """Ask the client for every pane's process; answered in `_read`."""
        if self._pids is None or self._proc is None or self._proc.stdin is None:
            return
        with contextlib.suppress(OSError):  # it is exiting: its reader will wake the reaper
            self._proc.stdin.write(ASK_PIDS)

    def _answered(self, block: list[bytes]) -> None:
        """A `list-panes` answer: remember each pane's process; a watched pane gone or dead wakes."""
        found: dict[str, int] = {}
        dead: set[str] = set()
        for line in block:
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith(b"%") and parts[1].isdigit():
                pane = parts[0].decode()
                found[pane] = int(parts[1])
                if parts[2] == b"1":
                    dead.add(pane)
        if not found:
            return  # attach's own empty block, or an error: not an answer
        self._pane_pids = found
        if self._panes - (set(found) - dead):
            self._on_change()  # went away between the probe and now

    async def _watch_pids(self) -> None:
        if self._pids is not None:
            await self._pids.sync([str(self._pane_pids[p]) for p in self._panes if p in self._pane_pids],
                                  timeout=PID_TIMEOUT)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        block: list[bytes] | None = None  # the lines of a command's answer, while one is read
        try:
            while line := await proc.stdout.readline():
                if block is not None:
                    if line.startswith((b"%end", b"%error")):
                        self._answered(block)
                        block = None
                        await self._watch_pids()
                    else:
                        block.append(line)
                elif line.startswith(b"%begin"):
                    block = []  # no notification ever comes inside a block
                elif line.startswith(WAKING):
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
            self._pane_pids = {}  # a new server numbers its panes anew: ask again
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
        if self._pids is not None:
            self._pids.close()
        self._pane_pids = {}
