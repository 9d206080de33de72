"""Google Gemini CLI's hooks (settings.json `hooks`): Claude Code's base fields (session_id, cwd,
hook_event_name) under event names of its own. Tool events carry no call id, so no durations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aod.ingest.columns import OK_BY_KIND, EventColumns, text

KINDS = {
    "BeforeAgent": "UserPromptSubmit",
    "AfterAgent": "Stop",
    "BeforeTool": "PreToolUse",
    "AfterTool": "PostToolUse",
    "PreCompress": "PreCompact",
    # SessionStart (source startup|resume|clear) and SessionEnd (reason exit|clear|…) mean what
    # Claude Code's do, under the same names.
}
# The notification Gemini CLI raises when a tool waits for the user's approval.
_APPROVAL = "ToolPermission"


def columns(payload: Mapping[str, Any]) -> EventColumns:
    given = text(payload.get("hook_event_name")) or "Unknown"
    kind = KINDS.get(given, given)
    if kind == "PostToolUse" and _failed(payload.get("tool_response")):
        kind = "PostToolUseFailure"
    elif kind == "Notification" and payload.get("notification_type") == _APPROVAL:
        kind = "PermissionRequest"
    return EventColumns(
        kind=kind[:128],
        tool_name=text(payload.get("tool_name")),
        tool_use_id=None,
        duration_ms=None,
        ok=OK_BY_KIND.get(kind),
        agent_session_id=text(payload.get("session_id")),
        cwd=text(payload.get("cwd")),
    )


def _failed(response: object) -> bool:
    return isinstance(response, dict) and bool(response.get("error"))
