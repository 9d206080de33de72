"""aod's entries in Cursor's hooks.json (~/.cursor/hooks.json; project scope:
<project>/.cursor/hooks.json): `{"version": 1, "hooks": {event: [{"command": …}, …]}}`, a flat
list of handlers per event with no matcher groups (cursor.com/docs/agent/hooks)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aod.cli.hooks import Changes, SettingsError, is_aod_handler

AGENT = "cursor"
ALL_EVENTS = (
    "sessionStart", "sessionEnd", "beforeSubmitPrompt", "preToolUse", "postToolUse", "postToolUseFailure",
    "beforeShellExecution", "afterShellExecution", "beforeMCPExecution", "afterMCPExecution", "beforeReadFile",
    "afterFileEdit", "subagentStart", "subagentStop", "preCompact", "afterAgentResponse", "afterAgentThought",
    "stop",
)
# preToolUse/postToolUse cover the shell, MCP and edit events (with a tool_use_id, so durations
# pair): installing both families would count each call twice. A Cursor that predates them
# ignores their keys; `--events` can name the older family instead. afterAgentThought fires for
# every thinking block.
DEFAULT_EVENTS = (
    "sessionStart", "sessionEnd", "beforeSubmitPrompt", "preToolUse", "postToolUse", "postToolUseFailure",
    "subagentStart", "subagentStop", "preCompact", "stop",
)
NOTE = ("Cursor raises no hook while it waits for your approval (no needs_input from Cursor); "
        "it reloads hooks.json on save")


def config_path(scope: str, project_dir: str | None, env: dict[str, str]) -> Path:
    root = Path.home() if scope == "user" else Path(project_dir or os.getcwd())
    return Path(os.path.abspath(root / ".cursor" / "hooks.json"))


def _is_ours(entry: object) -> bool:
    # Cursor's handlers are command hooks unless they say otherwise ("type": "prompt").
    return isinstance(entry, dict) and is_aod_handler({"type": "command", **entry})


def install(doc: dict[str, Any], command: str, events: tuple[str, ...]) -> tuple[dict[str, Any], Changes]:
    """A copy of `doc` where each of `events` has exactly one aod handler (last) and no other event has any."""
    doc = json.loads(json.dumps(doc))
    hooks = doc.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError('"hooks" is not an object')
    changes = Changes()
    for event in [*hooks, *(e for e in events if e not in hooks)]:
        entries = hooks.get(event, [])
        if not isinstance(entries, list):
            if event in events:
                raise SettingsError(f'"hooks.{event}" is not a list')
            continue
        ours = [e for e in entries if _is_ours(e)]
        want = [{"command": command}] if event in events else []
        if ours == want:
            continue
        kept = [e for e in entries if not _is_ours(e)] + want
        if want and ours:
            changes.updated += 1
            changes.removed += len(ours) - 1
        elif want:
            changes.added += 1
        else:
            changes.removed += len(ours)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if hooks:
        doc.setdefault("version", 1)
        doc["hooks"] = hooks
    elif "hooks" in doc and changes.changed:
        del doc["hooks"]
        if doc == {"version": 1}:
            return {}, changes  # nothing but what aod wrote
    return doc, changes


def uninstall(doc: dict[str, Any]) -> tuple[dict[str, Any], Changes]:
    return install(doc, "", ())
