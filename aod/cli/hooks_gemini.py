"""aod's entries in Google Gemini CLI's settings.json (~/.gemini/settings.json; project scope:
<project>/.gemini/settings.json), under its `hooks` object: event -> groups -> command handlers,
Claude Code's layout (geminicli.com/docs/hooks/reference); `timeout` is in milliseconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aod.cli.hooks import Changes, install_entries, uninstall_entries

AGENT = "gemini"
ALL_EVENTS = (
    "SessionStart", "SessionEnd", "BeforeAgent", "AfterAgent", "BeforeModel", "AfterModel",
    "BeforeToolSelection", "BeforeTool", "AfterTool", "Notification", "PreCompress",
)
# BeforeModel/AfterModel/BeforeToolSelection fire for every model request (AfterModel for every
# streamed chunk), and Gemini waits for each: a process per chunk, for nothing aod shows.
DEFAULT_EVENTS = tuple(e for e in ALL_EVENTS if e not in ("BeforeModel", "AfterModel", "BeforeToolSelection"))
TIMEOUT_MS = 5000
NOTE = ("Gemini CLI runs hooks only while its hooks system is on (/settings -> Advanced -> Enable Hooks "
        "System: tools.enableHooks in settings.json); aod does not switch it on for you")


def config_path(scope: str, project_dir: str | None, env: dict[str, str]) -> Path:
    root = Path.home() if scope == "user" else Path(project_dir or os.getcwd())
    return Path(os.path.abspath(root / ".gemini" / "settings.json"))


def install(doc: dict[str, Any], command: str, events: tuple[str, ...]) -> tuple[dict[str, Any], Changes]:
    handler = {"type": "command", "command": command, "name": "aod", "timeout": TIMEOUT_MS}
    # No matcher: Gemini's is a regex ("*" would not compile), and a group without one matches all.
    return install_entries(doc, dict.fromkeys(events, handler), tool_matcher=False)


def uninstall(doc: dict[str, Any]) -> tuple[dict[str, Any], Changes]:
    return uninstall_entries(doc)
