"""The columns of an `events` row that a hook payload gives, and Claude Code's reading of them.

Claude Code's hook names are aod's event kinds (DESIGN §4's activity rules speak them); another
agent's payload is read by its module in aod/ingest/agents/, which answers in the same kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aod.ingest.envelope import InvalidItem
from aod.shown import shown

OK_BY_KIND = {"PostToolUse": 1, "PostToolUseFailure": 0, "StopFailure": 0}
# SQLite's INTEGER is 64-bit signed: a larger duration cannot be stored, and none is real.
_MAX_DURATION_MS = 2**63 - 1


@dataclass(slots=True)
class EventColumns:
    kind: str
    tool_name: str | None
    tool_use_id: str | None
    duration_ms: int | None
    ok: int | None
    agent_session_id: str | None
    cwd: str | None


def claude_columns(payload: Mapping[str, Any]) -> EventColumns:
    """A Claude Code hook payload (and any payload shaped like one: Codex's hooks copy it)."""
    return shaped_columns(payload, text(payload.get("hook_event_name")) or text(payload.get("event")) or "Unknown")


def shaped_columns(payload: Mapping[str, Any], kind: str) -> EventColumns:
    """The columns of a payload shaped like Claude Code's (tool fields, session_id, cwd) under `kind`."""
    kind = kind[:128]
    return EventColumns(
        kind=kind,
        tool_name=text(payload.get("tool_name")),
        tool_use_id=text(payload.get("tool_use_id")),
        duration_ms=duration_ms(payload.get("duration_ms")),
        ok=OK_BY_KIND.get(kind),
        agent_session_id=text(payload.get("session_id")),
        cwd=text(payload.get("cwd")),
    )


def duration_ms(value: object) -> int | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return None
    if value > _MAX_DURATION_MS:
        raise InvalidItem(f"duration_ms: {shown(value, 40)} is beyond what a 64-bit integer holds")
    return round(value)


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
