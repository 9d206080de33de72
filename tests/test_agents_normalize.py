"""Each agent's fixtures (built from its official docs) read into aod's kinds, and what those
kinds do to a session's activity: prompt -> active, approval wait -> waiting_input, turn end ->
idle, exit -> exited. Pure: no daemon (tests/test_agents_daemon.py runs them through one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aod.ingest.agents import KNOWN_AGENTS
from aod.ingest.agents.generic import KINDS as GENERIC_KINDS
from aod.ingest.normalize import event_columns
from aod.lifecycle.activity import transition_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(agent: str, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / agent / f"{name}.json").read_text())
    return payload


def activity_after(kind: str, payload: dict[str, Any]) -> str | None:
    change = transition_for(kind, payload)
    return None if change is None else str(change.activity)


# agent, fixture, aod kind, tool, activity it leads to (None: says nothing about it)
CASES = [
    ("codex", "SessionStart", "SessionStart", None, "idle"),
    ("codex", "UserPromptSubmit", "UserPromptSubmit", None, "active"),
    ("codex", "PreToolUse", "PreToolUse", "Bash", "active"),
    ("codex", "PermissionRequest", "PermissionRequest", "Bash", "waiting_input"),
    ("codex", "PostToolUse", "PostToolUse", "Bash", "active"),
    ("codex", "Stop", "Stop", None, "idle"),
    ("codex", "PostCompact", "PostCompact", None, None),
    ("codex", "notify.agent-turn-complete", "Stop", None, "idle"),
    ("gemini", "SessionStart", "SessionStart", None, "idle"),
    ("gemini", "BeforeAgent", "UserPromptSubmit", None, "active"),
    ("gemini", "BeforeTool", "PreToolUse", "run_shell_command", "active"),
    ("gemini", "Notification", "PermissionRequest", None, "waiting_input"),
    ("gemini", "AfterTool", "PostToolUse", "run_shell_command", "active"),
    ("gemini", "AfterTool.error", "PostToolUseFailure", "read_file", "active"),
    ("gemini", "AfterAgent", "Stop", None, "idle"),
    ("gemini", "BeforeModel", "BeforeModel", None, None),
    ("gemini", "SessionEnd", "SessionEnd", None, "exited"),
    ("cursor", "sessionStart", "SessionStart", None, "idle"),
    ("cursor", "beforeSubmitPrompt", "UserPromptSubmit", None, "active"),
    ("cursor", "preToolUse", "PreToolUse", "Shell", "active"),
    ("cursor", "postToolUse", "PostToolUse", "Shell", "active"),
    ("cursor", "afterShellExecution", "PostToolUse", "Shell", "active"),
    ("cursor", "afterFileEdit", "PostToolUse", "Edit", "active"),
    ("cursor", "afterAgentResponse", "afterAgentResponse", None, None),
    ("cursor", "stop", "Stop", None, "idle"),
    ("cursor", "stop.error", "StopFailure", None, "idle"),
    ("cursor", "sessionEnd", "SessionEnd", None, "exited"),
    ("opencode", "session.created", "SessionStart", None, "idle"),
    ("opencode", "chat.message", "UserPromptSubmit", None, "active"),
    ("opencode", "tool.execute.before", "PreToolUse", "bash", "active"),
    ("opencode", "permission.asked", "PermissionRequest", None, "waiting_input"),
    ("opencode", "tool.execute.after", "PostToolUse", "bash", "active"),
    ("opencode", "command.executed", "command.executed", None, None),
    ("opencode", "session.idle", "Stop", None, "idle"),
    ("opencode", "session.error", "StopFailure", None, "idle"),
]


@pytest.mark.parametrize(("agent", "name", "kind", "tool", "activity"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_each_fixture_reads_as_its_aod_kind(agent: str, name: str, kind: str, tool: str | None, activity: str | None) -> None:
    payload = fixture(agent, name)
    cols = event_columns(payload, agent)

    assert (cols.kind, cols.tool_name) == (kind, tool)
    assert activity_after(cols.kind, payload) == activity


@pytest.mark.parametrize("agent", ["codex", "gemini", "cursor", "opencode"])
def test_every_fixture_of_an_agent_names_one_session_and_its_directory(agent: str) -> None:
    ids = set()
    cwds = set()
    for path in sorted((FIXTURES / agent).glob("*.json")):
        cols = event_columns(json.loads(path.read_text()), agent)
        ids.add(cols.agent_session_id)
        cwds.add(cols.cwd)
    assert len(ids) == 1 and None not in ids
    assert cwds == {"/home/alice/src/my-project"}


def test_tool_durations_come_only_from_agents_that_time_their_tools() -> None:
    assert event_columns(fixture("cursor", "postToolUse"), "cursor").duration_ms == 1834
    assert event_columns(fixture("cursor", "afterShellExecution"), "cursor").duration_ms == 42
    # sessionEnd's duration_ms is the session's length, not a tool's.
    assert event_columns(fixture("cursor", "sessionEnd"), "cursor").duration_ms is None
    assert event_columns(fixture("gemini", "AfterTool"), "gemini").duration_ms is None
    # Codex's tool events pair by tool_use_id (the daemon times Pre -> Post).
    assert event_columns(fixture("codex", "PostToolUse"), "codex").tool_use_id == "call_7Hq2"


def test_a_payload_read_as_the_wrong_agent_is_not_mapped() -> None:
    # The envelope's agent decides: a Gemini payload sent as claude-code keeps Gemini's names.
    assert event_columns(fixture("gemini", "BeforeAgent"), "claude-code").kind == "BeforeAgent"
    assert event_columns(fixture("gemini", "BeforeAgent"), "gemini").kind == "UserPromptSubmit"


def test_unknown_event_names_are_kept_as_sent() -> None:
    for agent, name_key in (("gemini", "hook_event_name"), ("cursor", "hook_event_name")):
        assert event_columns({name_key: "somethingNew", "session_id": "s"}, agent).kind == "somethingNew"
    assert event_columns({"type": "approval-requested", "thread-id": "t"}, "codex").kind == "approval-requested"


@pytest.mark.parametrize(("short", "kind"), sorted(GENERIC_KINDS.items()))
def test_the_envelope_kinds_of_any_other_agent(short: str, kind: str) -> None:
    cols = event_columns({"kind": short, "session_id": "run-1", "cwd": "/w", "tool_name": "make"}, "aider")

    assert (cols.kind, cols.agent_session_id, cols.cwd) == (kind, "run-1", "/w")


def test_any_other_agent_may_send_claude_shaped_payloads_or_its_own_kinds() -> None:
    assert event_columns({"hook_event_name": "Stop", "session_id": "s"}, "aider").kind == "Stop"
    assert event_columns({"kind": "CommitMade", "session_id": "s"}, "aider").kind == "CommitMade"
    assert event_columns({"session_id": "s"}, "aider").kind == "Unknown"
    assert "aider" not in KNOWN_AGENTS
