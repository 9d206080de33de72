"""Codex, Gemini CLI and Cursor through what `aod hooks install --agent NAME` wrote: each
fixture (tests/fixtures/<agent>/) run by the installed command, into a real daemon, one step at a
time, checking the session's activity after each; unknown event names stored, not rejected.
Also Codex's `notify` program (the payload as its last argument) and the generic envelope."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_aod
from tests.helpers.daemon import Daemon

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFIG = {"codex": ".codex/hooks.json", "gemini": ".gemini/settings.json", "cursor": ".cursor/hooks.json"}

# Each agent's fixtures in the order a session fires them, with the activity after each step.
SCENARIOS = {
    "codex": [
        ("SessionStart", "idle"), ("UserPromptSubmit", "active"), ("PreToolUse", "active"),
        ("PermissionRequest", "waiting_input"), ("PostToolUse", "active"), ("PostCompact", "active"),
        ("Stop", "idle"),
    ],
    "gemini": [
        ("SessionStart", "idle"), ("BeforeAgent", "active"), ("BeforeTool", "active"),
        ("Notification", "waiting_input"), ("AfterTool", "active"), ("BeforeModel", "active"),
        ("AfterAgent", "idle"), ("SessionEnd", "exited"),
    ],
    "cursor": [
        ("sessionStart", "idle"), ("beforeSubmitPrompt", "active"), ("preToolUse", "active"),
        ("postToolUse", "active"), ("afterAgentResponse", "active"), ("stop", "idle"), ("sessionEnd", "exited"),
    ],
}
# The kind each fixture is stored under.
KINDS = {
    "codex": ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "PostCompact", "Stop"],
    "gemini": ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "BeforeModel",
               "Stop", "SessionEnd"],
    "cursor": ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "afterAgentResponse", "Stop",
               "SessionEnd"],
}


def installed_command(home: Path, agent: str, event: str) -> str:
    """The command of aod's entry for `event` in the agent's configuration file."""
    doc = json.loads((home / CONFIG[agent]).read_text())
    entries = doc["hooks"][event]
    handler = entries[-1] if agent == "cursor" else entries[-1]["hooks"][0]
    command: str = handler["command"]
    return command


def as_the_agent_runs_it(command: str) -> list[str]:
    # These agents hand the command to /bin/sh (dash on Debian, which does not exec a lone
    # command by itself): the client must still see the agent, not a shell, as its parent.
    return ["/bin/sh", "-c", command]


def hook_env(home: Path) -> dict[str, str]:
    # No AOD_* at all: the installed command must carry the daemon's socket and data dir itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_", "TMUX", "CLAUDE"))}
    env["HOME"] = str(home)
    return env


def install(daemon: Daemon, home: Path, agent: str) -> None:
    done = run_aod("--data-dir", str(daemon.data_dir), "--socket", str(daemon.socket), "hooks", "install",
                   "--agent", agent, "--events", ",".join(sorted({e for e, _ in _events(agent)})),
                   env={"HOME": str(home)})
    assert done.returncode == 0, done.stderr


def _events(agent: str) -> list[tuple[str, str]]:
    return [(json.loads((FIXTURES / agent / f"{name}.json").read_text())["hook_event_name"], name)
            for name, _ in SCENARIOS[agent]]


def only_session(daemon: Daemon, agent: str) -> dict[str, Any]:
    items = daemon.get(f"/v1/sessions?agent={agent}&all=1").body["items"]
    assert len(items) == 1, items
    return daemon.session(items[0]["id"])


@pytest.mark.parametrize("agent", sorted(SCENARIOS))
def test_an_agent_session_through_its_installed_hooks(agent: str, daemon: Daemon, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    install(daemon, home, agent)
    seen = []
    for (event, name), (_, activity) in zip(_events(agent), SCENARIOS[agent], strict=True):
        payload = (FIXTURES / agent / f"{name}.json").read_bytes()
        done = subprocess.run(as_the_agent_runs_it(installed_command(home, agent, event)), input=payload,
                              env=hook_env(home), capture_output=True, timeout=30, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
        session = only_session(daemon, agent)
        seen.append(session["activity"])
        assert session["activity"] == activity, (name, seen)

    assert (session["agent"], session["workspace_path"]) == (agent, "/home/alice/src/my-project")
    assert session["pid"] == os.getpid()  # this process plays the agent: the shell exec'd the client
    first = json.loads((FIXTURES / agent / f"{SCENARIOS[agent][0][0]}.json").read_text())
    assert session["agent_session_id"] == (first.get("conversation_id") or first.get("session_id"))
    events = daemon.get(f"/v1/sessions/{session['id']}/events?limit=100").body["items"]
    assert sorted(e["kind"] for e in events) == sorted(KINDS[agent])
    assert not list((daemon.data_dir / "spool").glob("*.json"))


def test_codex_notify_program_takes_the_payload_as_its_argument(daemon: Daemon, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    install(daemon, home, "codex")
    argv = shlex.split(installed_command(home, "codex", "Stop"))[1:]  # notify = [...] is an argv, no shell
    start = (FIXTURES / "codex" / "UserPromptSubmit.json").read_bytes()
    subprocess.run(argv, input=start, env=hook_env(home), capture_output=True, timeout=30, check=True)
    assert only_session(daemon, "codex")["activity"] == "active"
    notify = (FIXTURES / "codex" / "notify.agent-turn-complete.json").read_text()

    # Codex leaves stdin to the terminal: the client must not read it (it would wait forever).
    with subprocess.Popen([*argv, notify], stdin=subprocess.PIPE, env=hook_env(home)) as proc:
        assert proc.wait(timeout=10) == 0

    session = only_session(daemon, "codex")
    assert session["activity"] == "idle"
    kinds = [e["kind"] for e in daemon.get(f"/v1/sessions/{session['id']}/events").body["items"]]
    assert sorted(kinds) == ["Stop", "UserPromptSubmit"]


def test_an_unknown_event_name_is_stored_for_every_agent(daemon: Daemon, tmp_path: Path) -> None:
    for agent, base in (("codex", "Stop"), ("gemini", "AfterAgent"), ("cursor", "stop")):
        payload = json.loads((FIXTURES / agent / f"{base}.json").read_text())
        payload["hook_event_name"] = "SomethingNewIn2027"
        reply = daemon.post(f"/v1/hooks/{agent}", payload)
        assert reply.status == 202 and reply.body["accepted"] == 1, reply.body
    events = daemon.get("/v1/events?kind=SomethingNewIn2027").body["items"]
    assert sorted(e["agent"] for e in events) == ["codex", "cursor", "gemini"]
    # Each under its own agent's session, in the project its payload names.
    assert {e["session_id"] for e in events} == {"my-project-1", "my-project-2", "my-project-3"}


def test_any_other_agent_through_the_envelope_with_payload_kind(daemon: Daemon) -> None:
    def send(kind: str, **extra: Any) -> None:
        body = {"agent": "aider", "payload": {"kind": kind, "session_id": "run-7", "cwd": "/work/x", **extra}}
        reply = daemon.post("/v1/events", body)
        assert reply.status == 202 and reply.body["accepted"] == 1, reply.body

    send("start")
    assert only_session(daemon, "aider")["activity"] == "idle"
    send("prompt", prompt="fix the flaky test")
    session = only_session(daemon, "aider")
    assert (session["activity"], session["title"]) == ("active", "fix the flaky test")
    send("needs_input")
    assert only_session(daemon, "aider")["status"] == "needs_input"
    send("tool_end", tool_name="pytest", duration_ms=1200)
    send("idle")
    assert only_session(daemon, "aider")["activity"] == "idle"
    send("exit")
    session = only_session(daemon, "aider")
    assert (session["activity"], session["status"]) == ("exited", "exited")
    events = daemon.get(f"/v1/sessions/{session['id']}/events").body["items"]
    tool = next(e for e in events if e["kind"] == "PostToolUse")
    assert (tool["tool_name"], tool["duration_ms"]) == ("pytest", 1200)
