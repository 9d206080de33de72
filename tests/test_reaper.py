"""The reaper against real runtimes: tmux panes killed from outside, tmux gone, processes, restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, aod_command, hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.tmux import TmuxServer, clean_environ, start_daemon
from tests.helpers.waiting import wait_for

INTERVAL = 0.5
# Two intervals, plus room for a loaded machine (2 cores shared by the whole suite).
WITHIN_TWO_INTERVALS = 2 * INTERVAL + 2.0


def config(grace: str = "0.5s", stuck_after: str = "10m") -> str:
    return f'[reaper]\ninterval = "{INTERVAL}s"\ngrace = "{grace}"\n[lifecycle]\nstuck_after = "{stuck_after}"\n'



def serve(daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, text: str,
          path: str | None = None) -> Daemon:
    d = start_daemon(data_dir, aod_env, tmux, text, path=path)
    daemons.append(d)
    return d



def spawn(daemon: Daemon, project: Path, *command: str) -> dict[str, Any]:
    reply = daemon.post("/v1/sessions", {"project": str(project), "command": list(command)})
    assert reply.status == 201, reply.body
    return reply.body


def status_changes(daemon: Daemon, session_id: str) -> list[str]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True) as c:
        rows = c.execute("SELECT data FROM change_log WHERE entity = 'session' AND entity_id = ? ORDER BY seq",
                         (session_id,)).fetchall()
    return [json.loads(d)["status"] for (d,) in rows]


def test_a_pane_killed_from_outside_is_lost_within_two_intervals(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="0.5s"))
    s = spawn(aod, tmp_path, "sleep", "600")
    time.sleep(3 * INTERVAL)  # past the grace, with ticks that found it alive
    assert aod.session(s["id"]) | {"status": "idle", "is_alive": True} == aod.session(s["id"])
    tmux.tmux("kill-pane", "-t", s["runtime_handle"])
    killed_at = time.monotonic()
    wait_for(lambda: aod.session(s["id"])["status"] == "lost", timeout=10, interval=0.02, message="lost")
    elapsed = time.monotonic() - killed_at
    assert elapsed < WITHIN_TWO_INTERVALS, elapsed
    lost = aod.session(s["id"])
    assert (lost["termination_reason"], lost["is_alive"]) == ("runtime_lost", False) and lost["ended_at"]
    assert status_changes(aod, s["id"])[-1] == "lost"


def test_a_recent_event_holds_off_the_verdict(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="8s"))
    s = spawn(aod, tmp_path, "sleep", "600")
    prompt = hook_payload("UserPromptSubmit")
    reply = aod.post("/v1/events", {"agent": "claude-code", "session": s["id"], "payload": prompt,
                                    "runtime": {"tmux_pane": s["runtime_handle"]}})
    assert reply.status == 202
    tmux.tmux("kill-pane", "-t", s["runtime_handle"])
    wait_for(lambda: aod.session(s["id"])["is_alive"] is False, timeout=10, message="the probe to see it dead")
    current = aod.session(s["id"])
    assert (current["status"], current["termination_reason"]) == ("working", None)
    wait_for(lambda: aod.session(s["id"])["status"] == "lost", timeout=25, message="lost after the grace")


def test_without_tmux_nothing_is_concluded(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tmux").symlink_to(tmux.binary)
    # tmux looks a spawned command up on its client's PATH, here the daemon's.
    (bin_dir / "sleep").symlink_to(shutil.which("sleep") or "/bin/sleep")
    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="0s"), path=str(bin_dir))
    s = spawn(aod, tmp_path, "sleep", "600")
    assert aod.session(s["id"])["is_alive"] is True
    (bin_dir / "tmux").unlink()  # tmux removed from the daemon's PATH
    tmux.tmux("kill-pane", "-t", s["runtime_handle"])  # and the agent is really gone
    wait_for(lambda: aod.session(s["id"])["is_alive"] is None, timeout=10, message="a failed probe")
    time.sleep(4 * INTERVAL)
    current = aod.session(s["id"])
    assert (current["status"], current["termination_reason"], current["is_alive"]) == ("idle", None, None)
    refused = aod.post("/v1/sessions", {"project": str(tmp_path), "command": ["sleep", "1"]})
    assert refused.status == 502 and "tmux is not installed" in refused.body["error"]["message"]
    (bin_dir / "tmux").symlink_to(tmux.binary)  # back: now the probe can tell
    wait_for(lambda: aod.session(s["id"])["status"] == "lost", timeout=10, message="lost once tmux answers")


def post_event(daemon: Daemon, agent_id: str, pid: int, occurred_at: int | None = None) -> str:
    payload = hook_payload("SessionStart") | {"session_id": agent_id, "cwd": "/tmp"}
    item: dict[str, Any] = {"agent": "claude-code", "payload": payload, "runtime": {"pid": pid}}
    if occurred_at is not None:
        item["occurred_at"] = occurred_at
    assert daemon.post("/v1/events", item).status == 202
    (found,) = [s for s in daemon.get("/v1/sessions").body["items"] if s["agent_session_id"] == agent_id]
    return found["id"]


def test_process_runtime_alive_dead_and_reused(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="0.5s"))
    agent = subprocess.Popen(["sleep", "600"])
    impostor: subprocess.Popen[bytes] | None = None
    try:
        sid = post_event(aod, "proc-a", agent.pid)
        # The reaper records the process's start time in its handle the first time it sees it alive.
        wait_for(lambda: "@" in aod.session(sid)["runtime_handle"], timeout=10, message="the start time")
        current = aod.session(sid)
        assert (current["runtime"], current["is_alive"], current["pid"]) == ("process", True, agent.pid)
        assert current["runtime_handle"].startswith(f"{agent.pid}@")
        agent.kill()
        agent.wait()
        wait_for(lambda: aod.session(sid)["status"] == "lost", timeout=10, message="the dead agent to be lost")

        # A pid whose process started after the session's last event is not the agent (pid reuse).
        impostor = subprocess.Popen(["sleep", "600"])
        two_minutes_ago = time.time_ns() - 120 * 1_000_000_000
        reused = post_event(aod, "proc-b", impostor.pid, occurred_at=two_minutes_ago)
        wait_for(lambda: aod.session(reused)["status"] == "lost", timeout=10, message="the reused pid to be lost")
        assert impostor.poll() is None  # alive all along, and never taken for the agent
    finally:
        for p in (agent, impostor):
            if p is not None:
                p.kill()
                p.wait()


def test_working_turns_stuck_with_time_alone(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, config(stuck_after="1s"))
    payload = hook_payload("UserPromptSubmit")
    assert aod.post("/v1/events", {"agent": "claude-code", "payload": payload}).status == 202
    sid = aod.get("/v1/sessions").body["items"][0]["id"]
    assert aod.session(sid)["status"] == "working"
    wait_for(lambda: aod.session(sid)["status"] == "stuck", timeout=10, message="stuck")
    assert status_changes(aod, sid)[-2:] == ["working", "stuck"]  # the stream hears of it
    tool = hook_payload("PreToolUse")
    assert aod.post("/v1/events", {"agent": "claude-code", "payload": tool}).status == 202
    assert aod.session(sid)["status"] == "working"


def test_a_restarted_daemon_reconciles_and_keeps_spawned_sessions(
    daemons: list[Daemon], data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer, tmp_path: Path
) -> None:
    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="0.5s"))
    survivor = spawn(aod, tmp_path, "sh")
    victim = spawn(aod, tmp_path, "sleep", "600")
    time.sleep(2 * INTERVAL)
    assert aod.kill() == -signal.SIGKILL
    tmux.tmux("kill-pane", "-t", victim["runtime_handle"])  # dies while no daemon watches

    aod = serve(daemons, data_dir, aod_env, tmux, config(grace="0.5s"))
    # Reconciled before ready: the answer is right from the first request.
    assert aod.session(victim["id"])["status"] == "lost"
    kept = aod.session(survivor["id"])
    assert (kept["status"], kept["is_alive"], kept["runtime_handle"]) == ("idle", True, survivor["runtime_handle"])

    # Hook events from inside the spawned session still land on it (AOD_SESSION_ID in its env).
    hook = " ".join(aod_command()) + " hook"
    env = {**clean_environ(), **aod.env}
    for name in ("SessionStart", "UserPromptSubmit"):
        cmd = [*aod_command(), "send", survivor["id"], f"{hook} < {FIXTURES / f'{name}.json'}"]
        assert subprocess.run(cmd, env=env, capture_output=True, timeout=30).returncode == 0
    wait_for(lambda: aod.session(survivor["id"])["status"] == "working", timeout=15, message="the hooks")
    after = aod.session(survivor["id"])
    assert after["id"] == survivor["id"] and {e["kind"] for e in after["events"]} == {"SessionStart", "UserPromptSubmit"}
    assert len(aod.get("/v1/sessions").body["items"]) == 2
    assert os.path.exists(aod.socket)
