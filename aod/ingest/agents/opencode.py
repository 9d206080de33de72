"""opencode, through the plugin `aod hooks install --agent opencode` writes: each payload is one
of opencode's bus events as the plugin got it (`{"type", "properties"}`), or a plugin hook's
input under the hook's name (`tool.execute.before/after`: `{tool, sessionID, callID}`;
`chat.message`: the user's message), with the plugin's `directory` added."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aod.ingest.columns import OK_BY_KIND, EventColumns, text

KINDS = {
    "session.created": "SessionStart",
    "chat.message": "UserPromptSubmit",
    "tool.execute.before": "PreToolUse",
    "tool.execute.after": "PostToolUse",
    "permission.asked": "PermissionRequest",
    "permission.updated": "PermissionRequest",  # the name before opencode 1.x
    "session.idle": "Stop",
    "session.error": "StopFailure",
    "session.compacted": "PostCompact",
}


def columns(payload: Mapping[str, Any]) -> EventColumns:
    given = text(payload.get("type")) or "Unknown"
    kind = KINDS.get(given, given)[:128]
    props = payload.get("properties")
    props = props if isinstance(props, dict) else {}
    info = props.get("info")
    info = info if isinstance(info, dict) else {}
    session = text(props.get("sessionID")) or text(info.get("sessionID"))
    if given.startswith("session.") and session is None:
        session = text(info.get("id"))  # session.created/updated/deleted carry the session itself
    return EventColumns(
        kind=kind,
        tool_name=text(props.get("tool")),
        # callID pairs a tool's before and after: the daemon times the call from them.
        tool_use_id=text(props.get("callID")),
        duration_ms=None,
        ok=OK_BY_KIND.get(kind),
        agent_session_id=session,
        cwd=text(payload.get("directory")) or text(info.get("directory")),
    )
