"""Runtime exits as events, so the reaper can sleep: pidfds for processes, a tmux control client
for panes. Both only say "look now"; the reaper's probe decides what is alive."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aod.runtime import pidwatch
from aod.runtime.pidwatch import PidWatch
from aod.runtime.tmuxwatch import TmuxWatch


class RuntimeWatch:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.pids = PidWatch(on_change) if pidwatch.available() else None
        self.tmux = TmuxWatch(on_change)

    async def sync(self, *, panes: Iterable[str], processes: Iterable[str], timeout: float) -> None:
        """Watch these panes and process handles (the ones the last probe saw alive), and no others."""
        await self.tmux.sync(panes)
        if self.pids is not None:
            await self.pids.sync(processes, timeout=timeout)

    async def close(self) -> None:
        await self.tmux.close()
        if self.pids is not None:
            self.pids.close()
