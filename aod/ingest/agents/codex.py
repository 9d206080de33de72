"""OpenAI Codex CLI: its hooks (~/.codex/hooks.json) send Claude Code's payload shape under the
same event names; its `notify` program gets `{"type": "agent-turn-complete", "thread-id", …}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aod.ingest.columns import EventColumns, claude_columns, text

# notify's `type` values (developers.openai.com/codex/config-advanced#notifications).
NOTIFY_KINDS = {"agent-turn-complete": "Stop"}


def columns(payload: Mapping[str, Any]) -> EventColumns:
    if "hook_event_name" in payload or "type" not in payload:
        return claude_columns(payload)
    given = text(payload.get("type")) or "Unknown"
    return EventColumns(
        kind=NOTIFY_KINDS.get(given, given)[:128],
        tool_name=None,
        tool_use_id=None,
        duration_ms=None,
        ok=None,
        # A thread is what Codex resumes: the id its hooks call session_id.
        agent_session_id=text(payload.get("thread-id")),
        cwd=text(payload.get("cwd")),
    )
