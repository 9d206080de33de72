"""Ending an agent's runtime: its tmux pane, or its process (only if it still is the agent's)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from typing import Any

from aod.runtime import process, tmux
from aod.runtime.probe import Probe
from aod.timefmt import seconds_from_iso

# SIGTERM first, so the agent can save its transcript; SIGKILL if it is still there after this.
TERM_WAIT = 3.0


class KillError(RuntimeError):
    """The runtime could not be ended (tmux failed, no permission to signal the process)."""


async def end_runtime(session: Mapping[str, Any], *, timeout: float = tmux.DEFAULT_TIMEOUT) -> bool:
    """End the session's runtime; False when there was nothing left to end."""
    handle = session.get("runtime_handle")
    if not handle:
        return False
    if session.get("runtime") == "tmux":
        return await _kill_pane(handle, timeout)
    if session.get("runtime") == "process":
        seen = session.get("last_event_at")
        return await _kill_process(handle, seconds_from_iso(seen) if seen else None, timeout)
    return False


async def _kill_pane(pane: str, timeout: float) -> bool:
    try:
        result = await tmux.run("kill-pane", "-t", pane, timeout=timeout)
    except tmux.TmuxError as exc:
        raise KillError(str(exc)) from None
    if result.returncode == 0:
        return True
    if result.server_gone or "can't find pane" in result.stderr:
        return False
    raise KillError(f"tmux kill-pane failed: {result.stderr.strip() or result.returncode}")


async def _kill_process(handle: str, last_event_at: float | None, timeout: float) -> bool:
    try:
        pid, token = process.parse_handle(handle)
    except ValueError:
        return False
    if not await _is_the_agent(pid, token, last_event_at, timeout):
        return False  # gone, or the pid now belongs to someone else: never signal a stranger
    for sig, wait in ((signal.SIGTERM, TERM_WAIT), (signal.SIGKILL, 1.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError as exc:
            raise KillError(f"not allowed to signal pid {pid}: {exc}") from None
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if not await _is_the_agent(pid, token, last_event_at, timeout):
                return True
    raise KillError(f"pid {pid} is still running after SIGKILL")


async def _is_the_agent(pid: int, token: str | None, last_event_at: float | None, timeout: float) -> bool:
    try:
        observed = (await process.read_starts([pid], timeout=timeout)).get(pid)
    except process.ProbeFailed as exc:
        raise KillError(str(exc)) from None
    return process.judge_process(observed, token, owner_seen_at=last_event_at) is Probe.ALIVE
