"""Each agent's hook payloads read into aod's event columns, one module per agent.

aod's event kinds are Claude Code's hook names (the activity rules of aod/lifecycle/activity.py
speak them): a module maps its agent's events onto them where they mean the same (a prompt, a
tool's start and end, a wait for approval, a turn's end, an exit) and stores any other event under
its own name, unrejected. Which module reads a payload is the envelope's `agent`; an agent with
no module of its own is read by `generic` (Claude-shaped payloads, or `payload.kind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aod.ingest.agents import codex, cursor, gemini, generic, opencode
from aod.ingest.columns import EventColumns, claude_columns

__all__ = ["KNOWN_AGENTS", "columns_for"]

Reader = Callable[[Mapping[str, Any]], EventColumns]

_READERS: dict[str, Reader] = {
    "claude-code": claude_columns,
    "codex": codex.columns,
    "gemini": gemini.columns,
    "cursor": cursor.columns,
    "opencode": opencode.columns,
}
KNOWN_AGENTS = tuple(_READERS)


def columns_for(agent: str) -> Reader:
    """The reader of `agent`'s payloads."""
    return _READERS.get(agent, generic.columns)
