"""Session export (issue 20): JSONL that re-ingests into a fresh daemon as the same events, and
Markdown for people, from a real daemon and through `aod export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aod.lookback import markdown
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, UnixHTTPConnection
from tests.helpers.template_db import migrated_copy

COMPARED = ("uid", "session_id", "agent", "kind", "tool_name", "tool_use_id", "occurred_at", "duration_ms", "ok",
            "payload", "trimmed")


def _story(daemon: Daemon, session: str) -> None:
    failure = hook_payload("PostToolUseFailure", tool_use_id="toolu_2")
    items = [
        ("2026-05-01T09:00:00Z", hook_payload("UserPromptSubmit", prompt="Make the tests pass\nplease")),
        ("2026-05-01T09:00:01Z", hook_payload("PreToolUse", tool_use_id="toolu_1")),
        ("2026-05-01T09:00:03.500Z", hook_payload("PostToolUse.bash", tool_use_id="toolu_1")),
        ("2026-05-01T09:00:04Z", hook_payload("PreToolUse", tool_use_id="toolu_2")),
        ("2026-05-01T09:00:05Z", failure),
        ("2026-05-01T09:00:06Z", hook_payload("Notification", message="Claude needs your permission to use Bash")),
        ("2026-05-01T09:00:07Z", hook_payload("Stop")),
    ]
    reply = daemon.post("/v1/events", {"events": [
        {"agent": "claude-code", "session": session, "occurred_at": at, "payload": payload} for at, payload in items]})
    assert reply.status == 202 and reply.body["accepted"] == len(items), reply.body


def _export(daemon: Daemon, session: str, fmt: str) -> tuple[int, str, str]:
    conn = UnixHTTPConnection(str(daemon.socket))
    try:
        conn.request("GET", f"/v1/sessions/{session}/export?format={fmt}")
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_export_reingested_into_a_fresh_daemon_gives_the_same_events(
    daemon: Daemon, data_dir: Path, aod_env: dict[str, str]
) -> None:
    _story(daemon, "x-1")
    status, content_type, text = _export(daemon, "x-1", "jsonl")
    assert status == 200 and content_type.startswith("application/x-ndjson")
    exported = _lines(text)
    assert [e["kind"] for e in exported] == ["UserPromptSubmit", "PreToolUse", "PostToolUse", "PreToolUse",
                                             "PostToolUseFailure", "Notification", "Stop"]
    assert exported[2]["payload"]["tool_response"]["stdout"].startswith("Tests: 12 passed")
    assert exported[2]["duration_ms"] == 4187 and exported[4]["ok"] is False
    # The CLI writes the same bytes.
    by_cli = run_aod("export", "x-1", env=daemon.env)
    assert by_cli.returncode == 0 and _lines(by_cli.stdout) == exported

    fresh_dir = data_dir.parent / "fresh"
    fresh_dir.mkdir(mode=0o700)
    migrated_copy(fresh_dir / "aod.db")
    fresh = Daemon(fresh_dir, aod_env).start()
    try:
        reply = fresh.post("/v1/events", {"events": exported})
        assert reply.status == 202 and reply.body["accepted"] == len(exported), reply.body
        _, _, again = _export(fresh, "x-1", "jsonl")
        assert [{k: e[k] for k in COMPARED} for e in _lines(again)] == [{k: e[k] for k in COMPARED} for e in exported]
        # A second import of the same lines adds nothing: the uids are kept.
        assert fresh.post("/v1/events", {"events": exported}).body["duplicates"] == len(exported)
    finally:
        fresh.stop()


def test_markdown_export_reads_as_an_account_of_the_session(daemon: Daemon) -> None:
    _story(daemon, "x-2")
    status, content_type, text = _export(daemon, "x-2", "md")
    assert status == 200 and content_type.startswith("text/markdown")
    assert text.startswith("# Session x-2\n")
    assert "### 2026-05-01T09:00:00.000000Z Prompt\n\n> Make the tests pass\n> please\n" in text
    assert "### 2026-05-01T09:00:03.500000Z Bash, 4.2 s\n\n```\nnpm test\n```\n\nResult:\n\n```\nTests: 12 passed" in text
    assert "Bash failed" in text and "Error: Cannot find module 'express'" in text
    assert "Notification: Claude needs your permission to use Bash" in text
    by_cli = run_aod("export", "x-2", "--format", "md", env=daemon.env)
    assert by_cli.returncode == 0 and by_cli.stdout.rstrip("\n") == text.rstrip("\n")

    assert _export(daemon, "x-2", "csv")[0] == 400
    assert _export(daemon, "nope", "md")[0] == 404
    missing = run_aod("export", "nope", env=daemon.env)
    assert missing.returncode == 4 and "no session nope" in missing.stderr


def test_markdown_header_lists_prs_checks_and_escalations() -> None:
    text = markdown.header(
        {"id": "s-9", "agent": "claude-code", "branch": "fix/login", "status": "ci_failed"},
        [{"url": "https://github.com/o/r/pull/7", "number": 7, "title": "Fix login", "state": "OPEN", "draft": False,
          "ci_state": "failure", "review_decision": None,
          "checks": [{"name": "test", "status": "failure", "commit_sha": "abcdef1234567890"}]}],
        [{"created_at": "2026-05-01T10:00:00Z", "priority": "urgent", "reaction": "ci-failed",
          "message": "CI failed twice", "acked_at": None}],
    )
    assert "- **Branch:** fix/login" in text
    assert "- [#7 Fix login](https://github.com/o/r/pull/7): OPEN, CI failure, review none" in text
    assert "  - check test: failure (commit abcdef123456)" in text
    assert "- 2026-05-01T10:00:00Z **urgent** ci-failed: CI failed twice, not acknowledged" in text
    fenced = markdown.event({"kind": "PostToolUse", "tool_name": "Bash", "occurred_at": "t", "duration_ms": None,
                             "ok": True, "payload": {"tool_input": {"command": "echo ```"}, "tool_response": "x"}})
    assert fenced.count("```\n") == 4  # the command's own fence cannot close the block
