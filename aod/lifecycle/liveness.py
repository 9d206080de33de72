"""Is the agent still there? Probe results -> facts, as pure functions (DESIGN.md §4, reaper).

A probe only looks; these rules decide what a look means. Only `dead` ever ends a session, and
only after a quiet spell (`grace`): an event proves life better than any probe, and a runtime
seen dead a moment after the agent spoke is more likely a probe racing a handover (a resume in
another pane, a restarted tmux server) than a loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from aod.runtime.probe import Probe


@dataclass(frozen=True)
class Verdict:
    is_alive: bool | None
    terminate: bool = False


def judge(probe: Probe, *, last_sign_of_life: float | None, now: float, grace: float) -> Verdict:
    """What a probe result means for the session.

    `last_sign_of_life` is the newest event's time, else when the session was created (a
    spawned session has no event yet but was certainly alive then).
    """
    if probe is Probe.ALIVE:
        return Verdict(True)
    if probe is Probe.DEAD:
        quiet = last_sign_of_life is None or now - last_sign_of_life > grace
        return Verdict(False, terminate=quiet)
    return Verdict(None)


@dataclass(slots=True)
class Runtime:
    kind: str | None = None  # "tmux" | "process"
    handle: str | None = None  # tmux pane id ("%3"), or "<pid>" / "<pid>@<start token>"
    pid: int | None = None


def runtime_after_event(current: Runtime, *, tmux_pane: str | None, pid: int | None) -> Runtime:
    """The runtime a session has after its newest event reported `tmux_pane` / `pid`.

    The newest event speaks for the agent now: after `claude --resume` in another terminal the
    old pane or pid is no longer the agent's. A pane beats a pid (tmux can be probed without
    guessing), and an unchanged pid keeps its handle, with the start time already recorded.
    """
    if tmux_pane:
        return Runtime("tmux", tmux_pane, pid if pid is not None else current.pid)
    if pid is not None:
        if current.kind == "process" and current.pid == pid and current.handle:
            return current
        return Runtime("process", str(pid), pid)
    return current
