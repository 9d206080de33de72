"""Process runtimes: is the pid alive, and is it still the process that ran the agent?

A pid alone is not an identity: once the agent exits the kernel may hand its pid to anything.
A process's start time is fixed for its whole life, so pid + start time is. The start time is
recorded the first time the reaper sees the handle alive; before that, a process that started
after the session's newest event cannot be the one that sent it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aod import proc
from aod.runtime.probe import Probe

PROC = Path("/proc")
# /proc/stat's btime and the tick count give the start to about a second; a hook stamps its
# event after its agent started, so anything later than this margin is another process.
START_SLACK = 2.0


class ProbeFailed(RuntimeError):
    """The process table could not be read (ps missing or hung)."""


@dataclass(frozen=True)
class ProcessStart:
    token: str  # exact and constant for the life of the process: compared for equality
    started_at: float  # epoch seconds, about ±1 s: only for "started after" checks


def format_handle(pid: int, token: str | None) -> str:
    return f"{pid}@{token}" if token else str(pid)


def parse_handle(handle: str) -> tuple[int, str | None]:
    """`"<pid>"` or `"<pid>@<token>"`; ValueError for anything else."""
    pid_text, _, token = handle.partition("@")
    pid = int(pid_text)
    if pid <= 0:
        raise ValueError(f"not a pid: {pid_text!r}")
    return pid, token or None


def judge_process(observed: ProcessStart | None, recorded_token: str | None, *, owner_seen_at: float | None) -> Probe:
    """`observed` is what runs under the pid now (None: nothing, or a zombie)."""
    if observed is None:
        return Probe.DEAD
    if recorded_token is not None:
        return Probe.ALIVE if observed.token == recorded_token else Probe.DEAD
    if owner_seen_at is not None and observed.started_at > owner_seen_at + START_SLACK:
        return Probe.DEAD
    return Probe.ALIVE


async def read_starts(pids: Iterable[int], *, timeout: float) -> dict[int, ProcessStart | None]:
    """What runs under each pid: /proc on Linux (in a thread), else one `ps` for all of them."""
    wanted = sorted(set(pids))
    if not wanted:
        return {}
    if (PROC / "self" / "stat").exists():
        try:
            return await asyncio.wait_for(asyncio.to_thread(_read_proc, wanted), timeout)
        except TimeoutError:
            raise ProbeFailed(f"reading /proc took more than {timeout:g}s") from None
    return await _read_ps(wanted, timeout)


def _read_proc(pids: list[int]) -> dict[int, ProcessStart | None]:
    boot = _boot_time()
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, ProcessStart | None] = {}
    for pid in pids:
        try:
            text = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            found[pid] = None
            continue
        except OSError as exc:
            raise ProbeFailed(f"cannot read /proc/{pid}/stat: {exc}") from None
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = text[text.rindex(")") + 2 :].split()
        state, start_ticks = fields[0], int(fields[19])
        found[pid] = None if state in ("Z", "X", "x") else ProcessStart(str(start_ticks), boot + start_ticks / ticks)
    return found


def _boot_time() -> float:
    for line in (PROC / "stat").read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ProbeFailed("/proc/stat has no btime")


async def _read_ps(pids: list[int], timeout: float) -> dict[int, ProcessStart | None]:
    # LC_ALL=C: lstart is printed in the locale's words, and parsed here in English.
    try:
        done = await proc.run(("ps", "-o", "pid=,stat=,lstart=", "-p", ",".join(map(str, pids))),
                              timeout=timeout, env={"LC_ALL": "C"})
    except proc.ProgramTimeout:
        raise ProbeFailed(f"ps did not answer within {timeout:g}s") from None
    except proc.ProgramError as exc:
        raise ProbeFailed(str(exc)) from None
    # ps exits 1 when none of the pids exists: that is an answer, not a failure.
    found: dict[int, ProcessStart | None] = dict.fromkeys(pids)
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        pid, state, lstart = int(parts[0]), parts[1], parts[2].strip()
        if pid not in found or state.startswith("Z"):
            continue
        try:
            started = time.mktime(time.strptime(lstart, "%a %b %d %H:%M:%S %Y"))
        except ValueError:
            raise ProbeFailed(f"cannot read ps start time {lstart!r}") from None
        found[pid] = ProcessStart(str(int(started)), started)
    return found
