"""Claude Code's `--resume` double start, as pure predicates.

`claude --resume X` fires two SessionStart hooks at the same moment from the same process: one
with `source: "resume"` for X, and one with `source: "startup"` for a brand-new id that never
sees another event (anthropics/claude-code#24265). They arrive in either order. The startup one
must not become a session of its own: it is recognised by coming from the same agent process
(same pid, else same tmux pane) within `PAIR_WINDOW` of a resume start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Both hooks fire together; a few seconds covers slow hook processes and spooling.
PAIR_WINDOW = 10.0


def is_resume_start(kind: str, payload: Mapping[str, Any]) -> bool:
    return kind == "SessionStart" and payload.get("source") == "resume"


def is_fresh_start(kind: str, payload: Mapping[str, Any]) -> bool:
    return kind == "SessionStart" and payload.get("source") == "startup"
