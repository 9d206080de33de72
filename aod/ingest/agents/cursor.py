"""Cursor's agent hooks (~/.cursor/hooks.json): camelCase events with `conversation_id` as the
session and `workspace_roots` instead of a cwd. Shell, MCP and file events become tool events;
the newer preToolUse/postToolUse family carries Claude Code's tool fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aod.ingest.columns import OK_BY_KIND, EventColumns, duration_ms, text

KINDS = {
    "sessionStart": "SessionStart",
    "sessionEnd": "SessionEnd",
    "beforeSubmitPrompt": "UserPromptSubmit",
    "preToolUse": "PreToolUse",
    "postToolUse": "PostToolUse",
    "postToolUseFailure": "PostToolUseFailure",
    "beforeShellExecution": "PreToolUse",
    "afterShellExecution": "PostToolUse",
    "beforeMCPExecution": "PreToolUse",
    "afterMCPExecution": "PostToolUse",
    "beforeReadFile": "PreToolUse",
    "afterFileEdit": "PostToolUse",
    "subagentStart": "SubagentStart",
    "subagentStop": "SubagentStop",
    "preCompact": "PreCompact",
    "stop": "Stop",
}
# The tool an event names by being that event (its payload has no tool_name).
_TOOL_OF = {
    "beforeShellExecution": "Shell",
    "afterShellExecution": "Shell",
    "beforeReadFile": "Read",
    "afterFileEdit": "Edit",
}


def columns(payload: Mapping[str, Any]) -> EventColumns:
    given = text(payload.get("hook_event_name")) or "Unknown"
    kind = KINDS.get(given, given)
    if kind == "Stop" and payload.get("status") == "error":
        kind = "StopFailure"
    return EventColumns(
        kind=kind[:128],
        tool_name=_TOOL_OF.get(given) or text(payload.get("tool_name")),
        tool_use_id=text(payload.get("tool_use_id")),
        # Tool events time the call themselves, in ms (sessionEnd's duration_ms is the session's).
        duration_ms=duration_ms(payload.get("duration")) if kind in OK_BY_KIND else None,
        ok=OK_BY_KIND.get(kind),
        agent_session_id=text(payload.get("conversation_id")) or text(payload.get("session_id")),
        cwd=text(payload.get("cwd")) or _first_root(payload.get("workspace_roots")),
    )


def _first_root(roots: object) -> str | None:
    return text(roots[0]) if isinstance(roots, list) and roots else None
