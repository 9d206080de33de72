"""`aod status|sessions|show|events` against a real daemon, as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aod.storage.migrate import migration_ids
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, SocketClient
from tests.helpers.waiting import wait_for


def _feed(daemon: SocketClient) -> None:
    now = time.time_ns()
    for i, name in enumerate(("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse.bash", "PermissionRequest")):
        payload = hook_payload(name)
        assert daemon.post("/v1/events", {"payload": payload, "occurred_at": now + i * 1000}).status == 202


def _env(daemon: SocketClient) -> dict[str, str]:
    return {k: v for k, v in daemon.env.items() if k.startswith(("AOD_", "XDG_"))}


def test_status_reports_the_daemon(daemon: Daemon) -> None:
    _feed(daemon)
    result = run_aod("status", env=_env(daemon))
    assert result.returncode == 0, result.stderr
    assert str(daemon.proc.pid) in result.stdout and migration_ids()[-1] in result.stdout
    as_json = json.loads(run_aod("status", "--json", env=_env(daemon)).stdout)
    assert as_json["counts"]["events"] == 5 and as_json["pid"] == daemon.proc.pid


def test_status_still_asks_the_daemon_when_the_config_file_is_broken(daemon: Daemon) -> None:
    # The daemon keeps its last good config and reports the broken file: the CLI must show that.
    daemon.config.write_text(daemon.config.read_text() + '[reaper]\ninterval = "soon"\n')
    wait_for(lambda: daemon.status()["config"]["errors"], message="the daemon reports the broken file")
    result = run_aod("status", env=_env(daemon))
    assert result.returncode == 0, result.stderr
    assert "invalid config" in result.stderr and "reaper.interval" in result.stderr
    assert "reaper.interval" in result.stdout and str(daemon.proc.pid) in result.stdout
    assert run_aod("sessions", "--json", env=_env(daemon)).returncode == 0


def test_status_exits_3_without_a_daemon(tmp_path: Path, aod_env: dict[str, str]) -> None:
    result = run_aod("status", "--socket", str(tmp_path / "none.sock"), env=aod_env)
    assert result.returncode == 3
    assert "no daemon is answering" in result.stderr and "aod serve" in result.stderr


def test_sessions_show_and_events(api: SocketClient) -> None:
    _feed(api)
    env = _env(api)
    table = run_aod("sessions", env=env)
    assert table.returncode == 0
    assert "my-project-1" in table.stdout and "needs_input" in table.stdout and "STATUS" in table.stdout
    filtered = json.loads(run_aod("sessions", "--status", "working", "--json", env=env).stdout)
    assert filtered["items"] == []
    detail = run_aod("show", "my-project-1", env=env)
    assert detail.returncode == 0 and "factorial" in detail.stdout and "PermissionRequest" in detail.stdout
    shown = json.loads(run_aod("show", "my-project-1", "--json", env=env).stdout)
    assert shown["id"] == "my-project-1" and len(shown["events"]) == 5
    missing = run_aod("show", "nope-9", env=env)
    assert missing.returncode == 4 and "nope-9" in missing.stderr
    events = run_aod("events", "--session", "my-project-1", env=env)
    assert events.returncode == 0
    assert [k for k in ("SessionStart", "PreToolUse", "PostToolUse", "Bash") if k not in events.stdout] == []
    listed = json.loads(run_aod("events", "--json", "--kind", "PostToolUse", env=env).stdout)
    assert [(e["kind"], e["duration_ms"]) for e in listed["items"]] == [("PostToolUse", 4187)]
