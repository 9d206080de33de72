"""Process runtimes against real processes: start times, reused pids, zombies, ending them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from aod.runtime import probes, process
from aod.runtime.kill import end_runtime
from aod.runtime.probe import Probe


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_start_token_is_stable_and_distinct(sleeper: subprocess.Popen[bytes]) -> None:
    first = await process.read_starts([sleeper.pid, os.getpid()], timeout=5)
    again = await process.read_starts([sleeper.pid], timeout=5)
    assert first[sleeper.pid] == again[sleeper.pid]
    own, child = first[os.getpid()], first[sleeper.pid]
    assert own is not None and child is not None
    assert own.token != child.token  # pytest started long before its child
    assert abs(child.started_at - time.time()) < 60


async def test_gone_and_zombie_processes_read_as_nothing() -> None:
    zombie = subprocess.Popen(["true"])
    time.sleep(0.3)  # exited, but not waited for: a zombie holds the pid
    try:
        found = await process.read_starts([dead_pid(), zombie.pid], timeout=5)
        assert set(found.values()) == {None}
    finally:
        zombie.wait()


def target(handle: str, last_event_at: float | None = None) -> probes.Target:
    return probes.Target("p-1", "process", handle, last_event_at)


async def test_probe_records_the_start_of_a_live_unrecorded_pid(sleeper: subprocess.Popen[bytes]) -> None:
    (seen,) = await probes.probe_all([target(str(sleeper.pid), time.time())], timeout=5)
    assert seen.probe is Probe.ALIVE
    start = (await process.read_starts([sleeper.pid], timeout=5))[sleeper.pid]
    assert start is not None and seen.start_token == start.token


async def test_a_reused_pid_is_dead(sleeper: subprocess.Popen[bytes]) -> None:
    """The handle recorded another start time for this pid: the agent died and the pid was reused."""
    start = (await process.read_starts([sleeper.pid], timeout=5))[sleeper.pid]
    assert start is not None
    recorded_earlier = str(int(start.token) - 500)
    seen = await probes.probe_all(
        [target(process.format_handle(sleeper.pid, recorded_earlier)), target(process.format_handle(sleeper.pid, start.token))],
        timeout=5,
    )
    assert [o.probe for o in seen] == [Probe.DEAD, Probe.ALIVE]


async def test_a_pid_that_started_after_the_last_event_is_not_the_agent(sleeper: subprocess.Popen[bytes]) -> None:
    an_hour_ago = time.time() - 3600
    (seen,) = await probes.probe_all([target(str(sleeper.pid), an_hour_ago)], timeout=5)
    assert seen.probe is Probe.DEAD and seen.start_token is None


async def test_dead_and_malformed_handles() -> None:
    seen = await probes.probe_all([target(str(dead_pid())), target("not-a-pid")], timeout=5)
    assert [o.probe for o in seen] == [Probe.DEAD, Probe.UNKNOWN]


async def test_ps_fallback_agrees_with_proc(sleeper: subprocess.Popen[bytes]) -> None:
    """The macOS path (ps lstart), run here against the same processes /proc describes."""
    pids = [sleeper.pid, os.getpid(), dead_pid()]
    from_ps = await process._read_ps(pids, timeout=5)
    from_proc = await process.read_starts(pids, timeout=5)
    assert from_ps[pids[2]] is None and from_proc[pids[2]] is None
    for pid in pids[:2]:
        ps_start, proc_start = from_ps[pid], from_proc[pid]
        assert ps_start is not None and proc_start is not None
        assert abs(ps_start.started_at - proc_start.started_at) <= 2


async def test_end_runtime_terminates_the_agent_process(sleeper: subprocess.Popen[bytes]) -> None:
    session = {"id": "p-1", "runtime": "process", "runtime_handle": str(sleeper.pid), "last_event_at": None}
    assert await end_runtime(session) is True
    assert sleeper.wait(timeout=5) == -15  # SIGTERM


async def test_end_runtime_never_signals_a_reused_pid(sleeper: subprocess.Popen[bytes]) -> None:
    session = {"id": "p-1", "runtime": "process", "runtime_handle": f"{sleeper.pid}@1", "last_event_at": None}
    assert await end_runtime(session) is False
    assert sleeper.poll() is None


async def test_end_runtime_escalates_to_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    from aod.runtime import kill

    monkeypatch.setattr(kill, "TERM_WAIT", 0.3)
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)"],
                                stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline()  # the handler is in place
        session = {"id": "p-1", "runtime": "process", "runtime_handle": str(stubborn.pid), "last_event_at": None}
        assert await end_runtime(session) is True
        assert stubborn.wait(timeout=5) == -9
    finally:
        stubborn.kill()
        stubborn.wait()
