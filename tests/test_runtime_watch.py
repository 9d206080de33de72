"""Exits as events: with the reaper's fallback poll at a minute, a killed pane or process is `lost`
within a second of its death (after the grace), and an idle daemon does not tick at all."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aod.runtime import pidwatch, process
from aod.runtime.pidwatch import PidWatch
from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.tmux import TmuxServer, start_daemon
from tests.helpers.waiting import wait_for

# Far longer than any wait below: only an event can explain a verdict within one.
CONFIG = '[reaper]\ninterval = "60s"\ngrace = "{grace}"\n'
WITHIN = 1.0



def serve(daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, grace: str) -> Daemon:
    d = start_daemon(data_dir, aod_env, tmux, CONFIG.format(grace=grace))
    daemons.append(d)
    return d



def spawn(daemon: Daemon, project: Path) -> dict[str, Any]:
    reply = daemon.post("/v1/sessions", {"project": str(project), "command": ["sleep", "600"]})
    assert reply.status == 201, reply.body
    return reply.body


def ticks(daemon: Daemon) -> float:
    text = daemon.get("/metrics").body
    (count,) = re.findall(r"^aod_reaper_tick_seconds_count (\S+)$", text, re.M)
    return float(count)


def lost_after(daemon: Daemon, session_id: str, since: float) -> float:
    wait_for(lambda: daemon.session(session_id)["status"] == "lost", timeout=10, interval=0.02, message="lost")
    return time.monotonic() - since


def test_a_killed_pane_is_lost_within_a_second_and_idle_means_no_ticks(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, grace="0.3s")
    s, other = spawn(aod, tmp_path), spawn(aod, tmp_path)
    time.sleep(0.5)  # past the grace; the tick two seconds after the spawns' commits attaches the watch
    wait_for(lambda: ticks(aod) >= 2, timeout=10, message="a tick after the spawns")
    time.sleep(2.5)  # past the tick that any write of that tick would cause
    before = ticks(aod)
    time.sleep(1.5)
    assert ticks(aod) == before  # nothing happened, nothing polled
    tmux.tmux("kill-pane", "-t", s["runtime_handle"])
    assert lost_after(aod, s["id"], time.monotonic()) < WITHIN
    lost = aod.session(s["id"])
    assert (lost["termination_reason"], lost["is_alive"]) == ("runtime_lost", False)
    assert aod.session(other["id"])["status"] == "idle"  # the other pane's session is untouched


def test_killing_the_session_the_watch_is_attached_to_and_then_another(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, grace="0.3s")
    spawned = [spawn(aod, tmp_path) for _ in range(3)]
    wait_for(lambda: ticks(aod) >= 2, timeout=10, message="a tick after the spawns")
    time.sleep(0.5)
    # Whichever session the control client sits in, every kill is heard: it re-attaches elsewhere.
    for s in spawned:
        tmux.tmux("kill-session", "-t", s["tmux_session"])
        assert lost_after(aod, s["id"], time.monotonic()) < WITHIN


def watched_elsewhere(aod: Daemon, tmux: TmuxServer, project: Path) -> dict[str, Any]:
    """A spawned session that the watch's control client is not attached to, once it watches."""
    spawned = [spawn(aod, project), spawn(aod, project)]
    wait_for(lambda: ticks(aod) >= 2, timeout=10, message="a tick after the spawns")
    wait_for(lambda: tmux.tmux("list-clients", "-F", "#{client_session}").stdout.strip(), timeout=5,
             message="the control client")
    attached = tmux.tmux("list-clients", "-F", "#{client_session}").stdout.split()
    time.sleep(0.5)  # past the grace, and the pane processes' watch is set
    return next(s for s in spawned if s["tmux_session"] not in attached)


def test_a_pane_dying_unannounced_in_another_session_is_lost_within_a_second(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    # tmux tells only the clients of a session about a pane that goes from a split window of it,
    # and nobody about a pane remain-on-exit keeps dead: the pane's process exit is what is heard.
    aod = serve(daemons, data_dir, aod_env, tmux, grace="0.3s")
    split = watched_elsewhere(aod, tmux, tmp_path)
    tmux.tmux("split-window", "-t", split["runtime_handle"], "sleep", "600")  # the new pane is the active one
    time.sleep(0.3)
    tmux.tmux("kill-pane", "-t", split["runtime_handle"])
    assert lost_after(aod, split["id"], time.monotonic()) < WITHIN

    kept = watched_elsewhere(aod, tmux, tmp_path)
    tmux.tmux("set-option", "-w", "-t", kept["runtime_handle"], "remain-on-exit", "on")
    (pid,) = [pid for pane, (_, pid) in tmux.panes().items() if pane == kept["runtime_handle"]]
    os.kill(pid, signal.SIGKILL)
    assert lost_after(aod, kept["id"], time.monotonic()) < WITHIN
    assert tmux.panes()[kept["runtime_handle"]][0]  # tmux keeps the dead pane


def test_a_recent_event_holds_off_the_verdict_until_the_grace_ends(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, grace="2s")
    s = spawn(aod, tmp_path)
    wait_for(lambda: ticks(aod) >= 2, timeout=10, message="a tick after the spawn")
    prompt = hook_payload("UserPromptSubmit")
    assert aod.post("/v1/events", {"agent": "claude-code", "session": s["id"], "payload": prompt,
                                   "runtime": {"tmux_pane": s["runtime_handle"]}}).status == 202
    spoke = time.monotonic()
    tmux.tmux("kill-pane", "-t", s["runtime_handle"])
    wait_for(lambda: aod.session(s["id"])["is_alive"] is False, timeout=WITHIN, interval=0.02, message="seen dead")
    assert aod.session(s["id"])["status"] == "working"  # within the grace: not ended
    elapsed = lost_after(aod, s["id"], spoke)
    assert 2.0 <= elapsed < 2.0 + WITHIN, elapsed  # at the grace deadline, not at the next poll


def test_a_killed_process_is_lost_within_a_second(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, grace="0.3s")
    agent = subprocess.Popen(["sleep", "600"])
    try:
        payload = hook_payload("SessionStart") | {"session_id": "watched", "cwd": "/tmp"}
        assert aod.post("/v1/events", {"agent": "claude-code", "payload": payload,
                                       "runtime": {"pid": agent.pid}}).status == 202
        (sid,) = [s["id"] for s in aod.get("/v1/sessions").body["items"] if s["agent_session_id"] == "watched"]
        # The tick after the commit records the start time and opens the pidfd.
        wait_for(lambda: "@" in aod.session(sid)["runtime_handle"], timeout=10, message="the start time")
        time.sleep(0.5)
        agent.kill()
        killed = time.monotonic()
        assert lost_after(aod, sid, killed) < WITHIN
    finally:
        agent.kill()
        agent.wait()


def test_working_turns_stuck_at_its_deadline_not_at_the_next_poll(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer
) -> None:
    d = start_daemon(data_dir, aod_env, tmux, CONFIG.format(grace="60s") + '[lifecycle]\nstuck_after = "3s"\n')
    daemons.append(d)
    prompt = hook_payload("UserPromptSubmit")
    assert d.post("/v1/events", {"agent": "claude-code", "payload": prompt}).status == 202
    spoke = time.monotonic()
    sid = d.get("/v1/sessions").body["items"][0]["id"]
    assert d.session(sid)["status"] == "working"
    wait_for(lambda: d.session(sid)["status"] == "stuck", timeout=10, interval=0.05, message="stuck")
    elapsed = time.monotonic() - spoke
    assert 3.0 <= elapsed < 3.0 + WITHIN, elapsed


def test_the_exit_watch_is_what_the_os_offers() -> None:
    # pidfd where Linux has it, kqueue on macOS and the BSDs, polling alone elsewhere.
    expected = "pidfd" if hasattr(os, "pidfd_open") else "kqueue" if hasattr(select, "kqueue") else None
    assert pidwatch.kind() == expected and pidwatch.available() == (expected is not None)
    if expected is not None:
        assert PidWatch(lambda: None).backend == expected
    missing = {"pidfd", "kqueue"} - set(pidwatch.BACKENDS)
    for backend in missing:  # on this machine at least one of the two is missing
        with pytest.raises(ValueError, match="cannot be watched"):
            PidWatch(lambda: None, backend=backend)
    assert missing, "no OS has both"


@pytest.mark.parametrize("backend", ["pidfd", "kqueue"])
async def test_an_exit_fires_at_once_and_a_reused_pid_is_reported_at_once(backend: str) -> None:
    if backend not in pidwatch.BACKENDS:
        pytest.skip(f"this OS has no {backend}")
    exits: list[int] = []
    exited = asyncio.Event()

    def on_exit() -> None:
        exits.append(1)
        exited.set()

    watch = PidWatch(on_exit, backend=backend)
    agent, impostor = subprocess.Popen(["sleep", "600"]), subprocess.Popen(["sleep", "600"])
    try:
        (start,) = (await process.read_starts([agent.pid], timeout=5)).values()
        assert start is not None
        # The impostor's handle carries another start time: the pid is not that process any more.
        await watch.sync([process.format_handle(agent.pid, start.token), f"{impostor.pid}@1"], timeout=5)
        assert len(exits) == 1 and watch.watched == {process.format_handle(agent.pid, start.token)}
        await asyncio.sleep(0.2)
        assert len(exits) == 1  # a live process does not fire
        exited.clear()
        agent.kill()
        await asyncio.wait_for(exited.wait(), WITHIN)  # heard at the exit itself, no poll to wait out
        assert len(exits) == 2 and watch.watched == set()
    finally:
        watch.close()
        for p in (agent, impostor):
            p.kill()
            p.wait()
