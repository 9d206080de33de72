"""Probing runtimes: one `tmux list-panes` for every tmux session, one process-table read for
every process session, both off the event loop and bounded by a timeout.

Only looking happens here; what a result means is `aod.lifecycle.liveness`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aod.runtime import process, tmux
from aod.runtime.probe import Probe


@dataclass(frozen=True)
class Pane:
    dead: bool  # the program in it exited and remain-on-exit keeps the pane
    pid: int | None


@dataclass(frozen=True)
class Target:
    session_id: str
    runtime: str | None
    handle: str
    last_event_at: float | None  # epoch seconds


@dataclass(frozen=True)
class Observation:
    session_id: str
    handle: str
    probe: Probe
    start_token: str | None = None  # a process's start, to record with its handle
    detail: str | None = None  # why a probe failed


async def list_panes(*, timeout: float) -> dict[str, Pane] | None:
    """Every pane of the tmux server, by pane id; None when no server is running."""
    result = await tmux.run("list-panes", "-a", "-F", "#{pane_id} #{pane_dead} #{pane_pid}", timeout=timeout)
    if result.returncode != 0:
        if result.server_gone:
            return None
        raise tmux.TmuxFailed(("list-panes",), result.returncode, result.stderr)
    panes = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            panes[parts[0]] = Pane(parts[1] == "1", int(parts[2]) if parts[2].isdigit() else None)
    return panes


def judge_pane(panes: Mapping[str, Pane] | None, pane_id: str) -> Probe:
    pane = None if panes is None else panes.get(pane_id)
    return Probe.DEAD if pane is None or pane.dead else Probe.ALIVE


async def probe_all(targets: Sequence[Target], *, timeout: float) -> list[Observation]:
    """One observation per target, in the targets' order."""
    tmux_targets = [t for t in targets if t.runtime == "tmux"]
    process_targets = [t for t in targets if t.runtime == "process"]
    tmux_seen, process_seen = await asyncio.gather(
        _probe_tmux(tmux_targets, timeout), _probe_processes(process_targets, timeout)
    )
    seen = {id(t): o for t, o in (*zip(tmux_targets, tmux_seen, strict=True),
                                  *zip(process_targets, process_seen, strict=True))}
    return [
        seen.get(id(t)) or Observation(t.session_id, t.handle, Probe.UNKNOWN, detail=f"no probe for runtime {t.runtime!r}")
        for t in targets
    ]


async def _probe_tmux(targets: Sequence[Target], timeout: float) -> list[Observation]:
    if not targets:
        return []
    try:
        panes = await list_panes(timeout=timeout)
    except tmux.TmuxError as exc:
        return [Observation(t.session_id, t.handle, Probe.FAILED, detail=str(exc)) for t in targets]
    return [Observation(t.session_id, t.handle, judge_pane(panes, t.handle)) for t in targets]


async def _probe_processes(targets: Sequence[Target], timeout: float) -> list[Observation]:
    handles: list[tuple[int, str | None] | None] = []
    for t in targets:
        try:
            handles.append(process.parse_handle(t.handle))
        except ValueError:
            handles.append(None)
    pids = [h[0] for h in handles if h is not None]
    try:
        starts = await process.read_starts(pids, timeout=timeout) if pids else {}
    except process.ProbeFailed as exc:
        return [
            Observation(t.session_id, t.handle, Probe.FAILED if h else Probe.UNKNOWN, detail=str(exc))
            for t, h in zip(targets, handles, strict=True)
        ]
    seen = []
    for t, h in zip(targets, handles, strict=True):
        if h is None:
            seen.append(Observation(t.session_id, t.handle, Probe.UNKNOWN, detail=f"not a process handle: {t.handle!r}"))
            continue
        observed = starts.get(h[0])
        probe = process.judge_process(observed, h[1], owner_seen_at=t.last_event_at)
        token = observed.token if observed is not None and probe is Probe.ALIVE else None
        seen.append(Observation(t.session_id, t.handle, probe, token))
    return seen
