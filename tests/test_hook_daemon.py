"""The hook client against a real daemon: fixtures in, spool while down, spool drained on start."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import FIXTURES, aod_command, hook_payload
from tests.helpers.daemon import Daemon

HOOK = Path(__file__).resolve().parent.parent / "aod" / "hook.py"


def run_hook(daemon: Daemon, payload: bytes, *, installed_form: bool = False, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-S", str(HOOK)] if installed_form else [*aod_command(), "hook"]
    env = daemon.env | {"TMUX_PANE": "%7"} | (extra_env or {})
    return subprocess.run(cmd, input=payload, capture_output=True, env=env, timeout=10)


def spool_files(daemon: Daemon) -> list[Path]:
    return sorted((daemon.data_dir / "spool").glob("*.json"))


def test_every_fixture_through_aod_hook_lands_on_one_session(daemon: Daemon) -> None:
    fixtures = sorted(FIXTURES.glob("*.json"))
    for path in fixtures:
        result = run_hook(daemon, path.read_bytes(), installed_form=path.name.startswith("P"))
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), path.name
    assert spool_files(daemon) == []
    sessions = daemon.get("/v1/sessions").body["items"]
    assert [s["id"] for s in sessions] == ["my-project-1"]
    assert sessions[0]["runtime"] == "tmux" and sessions[0]["runtime_handle"] == "%7"
    events = daemon.get("/v1/events?limit=100").body["items"]
    kinds = sorted(e["kind"] for e in events)
    expected = sorted(json.loads(p.read_text())["hook_event_name"] for p in fixtures)
    # PostToolUseFailure shares its tool call with PostToolUse.bash but has other content: kept.
    assert kinds == expected
    assert {e["session_id"] for e in events} == {"my-project-1"}


def test_the_same_hook_fired_twice_is_stored_once(daemon: Daemon) -> None:
    payload = (FIXTURES / "PreToolUse.json").read_bytes()
    assert run_hook(daemon, payload).returncode == 0
    assert run_hook(daemon, payload).returncode == 0
    events = daemon.get("/v1/events").body["items"]
    assert [e["kind"] for e in events] == ["PreToolUse"]


def test_unknown_kind_through_the_hook_is_stored(daemon: Daemon) -> None:
    payload = hook_payload("Stop") | {"hook_event_name": "CwdChanged", "new_cwd": "/tmp"}
    assert run_hook(daemon, json.dumps(payload).encode()).returncode == 0
    assert [e["kind"] for e in daemon.get("/v1/events").body["items"]] == ["CwdChanged"]


def test_aod_session_id_is_forwarded(daemon: Daemon) -> None:
    payload = (FIXTURES / "SessionStart.json").read_bytes()
    assert run_hook(daemon, payload, extra_env={"AOD_SESSION_ID": "spawned-1"}).returncode == 0
    assert daemon.get("/v1/sessions/spawned-1").status == 200


def test_spool_while_down_then_drained_on_start(daemon: Daemon) -> None:
    assert daemon.stop() == 0
    names = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse.bash"]
    for name in names:
        started = time.monotonic()
        result = run_hook(daemon, (FIXTURES / f"{name}.json").read_bytes(), installed_form=True)
        elapsed = time.monotonic() - started
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
        assert elapsed < 2.0, f"the hook took {elapsed:.2f}s with no daemon"
    assert len(spool_files(daemon)) == len(names)

    daemon.start()
    assert spool_files(daemon) == []
    events = daemon.get("/v1/events?order=asc").body["items"]
    assert [e["kind"] for e in events] == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse"]
    assert daemon.status()["spool"]["backlog"] == 0


def test_spool_files_arriving_while_running_are_ingested(daemon: Daemon) -> None:
    spool = daemon.data_dir / "spool"
    envelope = {"uid": "spooled-live", "agent": "claude-code", "payload": hook_payload("Stop")}
    tmp = spool / ".spooled-live.tmp"
    tmp.write_text(json.dumps(envelope))
    tmp.rename(spool / "1-spooled-live.json")
    (spool / "2-broken.json").write_text("{ this is not json")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and spool_files(daemon):
        time.sleep(0.05)
    assert spool_files(daemon) == []
    assert [e["uid"] for e in daemon.get("/v1/events").body["items"]] == ["spooled-live"]
    status = daemon.status()
    assert status["counts"]["dead_letters"] == 1
