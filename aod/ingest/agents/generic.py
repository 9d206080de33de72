"""Any other agent, through the envelope: a Claude-shaped payload (`hook_event_name`), or one that
names an aod kind in `payload.kind`, with the short names below for a shell one-liner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aod.ingest.columns import EventColumns, claude_columns, shaped_columns, text

# The documented `payload.kind` values (README, "Other agents"); any other kind is stored as given.
KINDS = {
    "start": "SessionStart",
    "prompt": "UserPromptSubmit",
    "tool_start": "PreToolUse",
    "tool_end": "PostToolUse",
    "tool_failed": "PostToolUseFailure",
    "needs_input": "PermissionRequest",
    "idle": "Stop",
    "error": "StopFailure",
    "exit": "SessionEnd",
}


def columns(payload: Mapping[str, Any]) -> EventColumns:
    if "hook_event_name" in payload or "event" in payload:
        return claude_columns(payload)
    given = text(payload.get("kind")) or "Unknown"
    return shaped_columns(payload, KINDS.get(given, given))
