"""aod's entries in OpenAI Codex CLI's hooks.json (`$CODEX_HOME/hooks.json`, default
~/.codex/hooks.json; project scope: <project>/.codex/hooks.json). Codex's hooks take Claude
Code's layout (event -> matcher groups -> command handlers) and send Claude Code's payloads
(developers.openai.com/codex/hooks); `timeout` is in seconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aod.cli.hooks import Changes, install_entries, uninstall_entries

AGENT = "codex"
ALL_EVENTS = (
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "PreCompact",
    "PostCompact", "SubagentStart", "SubagentStop", "Stop",
)
DEFAULT_EVENTS = ALL_EVENTS
# Codex waits for its hooks; the client answers within its own budget, this is a backstop.
TIMEOUT_S = 5
NOTE = ("Codex runs these hooks unless ~/.codex/config.toml has [features] hooks = false (a Codex whose hooks "
        "were still experimental needs [features] codex_hooks = true); it has no session-end hook: aod sees the "
        "exit when the reaper finds the process gone")


def config_path(scope: str, project_dir: str | None, env: dict[str, str]) -> Path:
    if scope == "user":
        configured = env.get("CODEX_HOME")
        root = Path(os.path.expanduser(configured)) if configured else Path.home() / ".codex"
        return Path(os.path.abspath(root / "hooks.json"))
    return Path(os.path.abspath(Path(project_dir or os.getcwd()) / ".codex" / "hooks.json"))


def install(doc: dict[str, Any], command: str, events: tuple[str, ...]) -> tuple[dict[str, Any], Changes]:
    handler = {"type": "command", "command": command, "timeout": TIMEOUT_S}
    # No matcher: Codex's matcher is a regex, and a group without one matches every tool.
    return install_entries(doc, dict.fromkeys(events, handler), tool_matcher=False)


def uninstall(doc: dict[str, Any]) -> tuple[dict[str, Any], Changes]:
    return uninstall_entries(doc)
