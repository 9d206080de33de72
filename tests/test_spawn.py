"""aod spawn / send / kill end to end: the CLI, a real daemon, a private tmux server, real git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, aod_command, hook_payload
from tests.helpers.daemon import Daemon, SocketClient, request
from tests.helpers.tmux import TmuxServer, clean_environ, run_cli
from tests.helpers.waiting import wait_for

AOD = aod_command()



def spawn(daemon: Daemon, project: Path, *command: str, extra: tuple[str, ...] = ()) -> str:
    result = run_cli(daemon, "spawn", "--project", str(project), *extra, "--", *command)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_spawn_starts_the_agent_in_tmux(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    sid = spawn(aod, repo, "sleep", "600")
    assert sid == "shop-1"
    s = aod.session(sid)
    assert s["project_id"] == "shop" and s["agent"] == "claude-code"
    assert (s["runtime"], s["is_alive"], s["status"], s["termination_reason"]) == ("tmux", True, "idle", None)
    assert tmux.panes()[s["runtime_handle"]] == (False, s["pid"])
    assert "aod-shop-1:" in tmux.tmux("list-sessions").stdout
    assert s["workspace_path"] == str(repo) and s["branch"] is None
    # --json prints the session object; ids keep counting per project.
    result = run_cli(aod, "spawn", "--project", str(repo), "--name", "second", "--json", "--", "sleep", "600")
    body = json.loads(result.stdout)
    assert (body["id"], body["title"], body["runtime"]) == ("shop-2", "second", "tmux")


def test_the_spawned_agent_and_its_hooks_know_their_session(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    hook = " ".join(AOD) + " hook"
    script = (f"{hook} < {FIXTURES / 'SessionStart.json'}; {hook} < {FIXTURES / 'UserPromptSubmit.json'};"
              ' echo "env: $AOD_SESSION_ID $AOD_SOCKET"; exec sleep 600')
    sid = spawn(aod, repo, "sh", "-c", script)
    pane = aod.session(sid)["runtime_handle"]
    wait_for(lambda: f"env: {sid} {aod.socket}" in tmux.capture(pane), message="the spawned environment")
    wait_for(lambda: aod.session(sid)["status"] == "working", message="the hooks to land")
    s = aod.session(sid)
    assert s["agent_session_id"] == hook_payload("SessionStart")["session_id"]
    assert (s["runtime"], s["runtime_handle"]) == ("tmux", pane)
    assert [e["kind"] for e in s["events"]] == ["UserPromptSubmit", "SessionStart"]
    assert [x["id"] for x in aod.get("/v1/sessions").body["items"]] == [sid]  # nothing adopted beside it


def test_send_types_into_the_pane(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    sid = spawn(aod, repo, "cat")
    pane = aod.session(sid)["runtime_handle"]
    result = run_cli(aod, "send", sid, "hello", "agent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    wait_for(lambda: "hello agent" in tmux.capture(pane), message="the message in the pane")
    long_text = "line one\n" + "y" * 2000 + "\nline three"
    assert run_cli(aod, "send", sid, "-", stdin=long_text).returncode == 0
    wait_for(lambda: "line three" in tmux.capture(pane), message="the long message")
    assert "y" * 2000 in tmux.capture(pane).replace("\n", "")


def test_send_refuses_a_session_waiting_for_input_unless_forced(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    sid = spawn(aod, repo, "cat")
    pane = aod.session(sid)["runtime_handle"]
    prompt = hook_payload("PermissionRequest")
    assert aod.post("/v1/events", {"agent": "claude-code", "session": sid, "payload": prompt}).status == 202
    assert aod.session(sid)["status"] == "needs_input"
    refused = aod.post(f"/v1/sessions/{sid}/send", {"message": "yes"})
    assert refused.status == 409 and refused.body["error"]["code"] == "waiting_input"
    result = run_cli(aod, "send", sid, "typed anyway?")
    assert result.returncode == 5 and "waiting for input" in result.stderr
    assert "typed anyway?" not in tmux.capture(pane)
    assert run_cli(aod, "send", "--force", sid, "forced through").returncode == 0
    wait_for(lambda: "forced through" in tmux.capture(pane), message="the forced message")


def test_kill_ends_the_runtime_and_marks_the_session(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    sid = spawn(aod, repo, "sleep", "600")
    pane = aod.session(sid)["runtime_handle"]
    result = run_cli(aod, "kill", sid)
    assert (result.returncode, result.stdout.strip()) == (0, f"{sid} killed")
    assert pane not in tmux.panes()
    s = aod.session(sid)
    assert (s["status"], s["termination_reason"], s["is_alive"]) == ("killed", "killed", False)
    assert s["ended_at"] is not None
    again = run_cli(aod, "kill", sid, "--json")  # idempotent
    assert again.returncode == 0 and json.loads(again.stdout)["runtime_ended"] is False
    refused = aod.post(f"/v1/sessions/{sid}/send", {"message": "hello?"})
    assert refused.status == 409 and refused.body["error"]["code"] == "session_ended"
    assert run_cli(aod, "kill", "nope-1").returncode == 4


def test_worktree_on_a_new_branch(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    sid = spawn(aod, repo / ".", "sleep", "600", extra=("--worktree", "--name", "Fix the login"))
    s = aod.session(sid)
    assert s["branch"] == "aod/fix-the-login"
    workspace = Path(s["workspace_path"])
    assert workspace == aod.data_dir / "worktrees" / sid and (workspace / "README").is_file()
    head = subprocess.run(["git", "-C", str(workspace), "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True)
    assert head.stdout.strip() == "aod/fix-the-login"
    cwd = tmux.tmux("display-message", "-p", "-t", s["runtime_handle"], "#{pane_current_path}").stdout.strip()
    assert Path(cwd).resolve() == workspace.resolve()
    # The same branch again is a clear conflict, and leaves no session behind.
    result = run_cli(aod, "spawn", "--project", str(repo), "--worktree", "--name", "Fix the login", "--", "sleep", "1")
    assert result.returncode == 5 and "already exists" in result.stderr
    assert [x["id"] for x in aod.get("/v1/sessions").body["items"]] == [sid]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"command": ["sleep", "1"]}, "invalid_parameter", "project"),
        ({"project": "relative/path", "command": ["sleep", "1"]}, "invalid_parameter", "project"),
        ({"project": "/no/such/dir", "command": ["sleep", "1"]}, "invalid_parameter", "project"),
        ({"project": "{repo}"}, "invalid_parameter", "command"),
        ({"project": "{repo}", "command": []}, "invalid_parameter", "command"),
        ({"project": "{repo}", "command": "sleep 1"}, "invalid_parameter", "command"),
        ({"project": "{repo}", "command": ["sleep", 1]}, "invalid_parameter", "command"),
        ({"project": "{repo}", "command": ["x"], "agent": "no spaces"}, "invalid_parameter", "agent"),
        ({"project": "{repo}", "command": ["x"], "worktree": "yes"}, "invalid_parameter", "worktree"),
        ({"project": "{repo}", "command": ["x"], "name": ""}, "invalid_parameter", "name"),
        ({"project": "{repo}", "command": ["x"], "colour": "red"}, "invalid_parameter", "colour"),
        ({"project": "{plain}", "command": ["x"], "worktree": True}, "invalid_parameter", "git"),
        ([1, 2], "invalid_body", "object"),
    ],
)
def test_spawn_refuses_bad_requests(api: SocketClient, repo: Path, tmp_path: Path, body: Any, code: str, field: str) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    text = json.dumps(body).replace("{repo}", str(repo)).replace("{plain}", str(plain))
    reply = api.post("/v1/sessions", text)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == code and field in reply.body["error"]["message"]
    assert api.get("/v1/sessions").body["items"] == []


def test_control_errors_are_json(aod: Daemon, repo: Path) -> None:
    assert request(aod.socket, "POST", "/v1/sessions", b"{}", headers={"Content-Type": "text/plain"}).status == 415
    assert aod.post("/v1/sessions", "{not json").body["error"]["code"] == "invalid_json"
    assert aod.post("/v1/sessions/nope-1/send", {"message": "hi"}).status == 404
    assert aod.post("/v1/sessions/nope-1/kill", {}).status == 404
    adopted = hook_payload("SessionStart")
    aod.post("/v1/events", {"agent": "claude-code", "payload": adopted})  # no runtime reported
    sid = aod.get("/v1/sessions").body["items"][0]["id"]
    for message in ("", 5, None):
        assert aod.post(f"/v1/sessions/{sid}/send", {"message": message}).status == 400
    assert aod.post(f"/v1/sessions/{sid}/send", {"message": "hi", "force": "yes"}).status == 400
    no_runtime = aod.post(f"/v1/sessions/{sid}/send", {"message": "hi"})
    assert no_runtime.status == 409 and no_runtime.body["error"]["code"] == "no_runtime"
    ended = hook_payload("SessionEnd")
    aod.post("/v1/events", {"agent": "claude-code", "payload": ended})
    refused = aod.post(f"/v1/sessions/{sid}/kill", {})
    assert refused.status == 409 and refused.body["error"]["code"] == "session_ended"
    usage = run_cli(aod, "spawn", "--project", str(repo), "--agent", "aider")
    assert usage.returncode == 2 and "nothing to run" in usage.stderr


def test_cli_without_a_daemon(tmp_path: Path, aod_env: dict[str, str]) -> None:
    env = {**clean_environ(), **aod_env, "AOD_SOCKET": str(tmp_path / "none.sock"), "AOD_DATA_DIR": str(tmp_path)}
    for args in (["spawn", "--", "sleep", "1"], ["send", "x-1", "hi"], ["kill", "x-1"]):
        result = subprocess.run([*AOD, *args], capture_output=True, text=True, env=env, timeout=30)
        assert result.returncode == 3 and "no daemon" in result.stderr
