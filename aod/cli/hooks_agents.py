"""`aod hooks install|uninstall --agent codex|gemini|cursor`: aod's entries in another agent's
own hook configuration, with Claude Code's rules (aod/cli/hooks.py): an entry is aod's by the
command it runs (the hook client, with its own options only), install leaves exactly one aod
entry per event and touches nothing of the user's, uninstall removes exactly aod's entries, and
the file itself when nothing else was in it.

These agents run a hook's `command` through a shell and wait for it (none has Claude Code's
`async`): the command is `exec` and the client's argv, shell-quoted (see `shell_command`), and
the client answers within its 300 ms budget (it spools when the daemon is slow), printing nothing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Protocol

from aod.cli import hooks_codex, hooks_cursor, hooks_gemini, hooks_opencode
from aod.cli.hooks import (
    EXIT_FAILED,
    Changes,
    SettingsError,
    apply_change,
    hook_argv,
    passed_on,
    read_settings,
)
from aod.cli.hooks import run as run_for_claude_code
from aod.hook import DEFAULT_AGENT

__all__ = ["AGENT_INSTALLERS", "Installer", "run", "shell_command"]


class Installer(Protocol):
    """What one agent's installer module provides."""

    AGENT: str
    ALL_EVENTS: tuple[str, ...]
    DEFAULT_EVENTS: tuple[str, ...]
    NOTE: str

    def config_path(self, scope: str, project_dir: str | None, env: dict[str, str]) -> Path: ...

    def install(self, doc: dict[str, Any], command: str, events: tuple[str, ...]) -> tuple[dict[str, Any], Changes]: ...

    def uninstall(self, doc: dict[str, Any]) -> tuple[dict[str, Any], Changes]: ...


AGENT_INSTALLERS: dict[str, Installer] = {m.AGENT: m for m in (hooks_codex, hooks_gemini, hooks_cursor)}


def shell_command(argv: list[str]) -> str:
    """`argv` as the shell string these agents run with `sh -c`. `exec`: a shell that does not
    replace itself with a lone command (dash, Debian's sh) would otherwise be the client's parent,
    and the client reports its parent as the agent's pid: a shell gone at once, a different one
    for every event, where the daemon must see the agent's own process."""
    return "exec " + shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    """`aod hooks install|uninstall [--agent NAME]`: Claude Code's (aod.cli.hooks) or another agent's."""
    if args.agent == DEFAULT_AGENT:
        return run_for_claude_code(args)
    if args.agent == hooks_opencode.AGENT:
        return hooks_opencode.run(args)
    installer = AGENT_INSTALLERS[args.agent]
    install = args.hooks_command == "install"
    if args.scope == "local" or (install and args.http):
        what = "--scope local" if args.scope == "local" else "--http"
        print(f"aod: {what} is Claude Code's alone; {args.agent} takes --scope user or project", file=sys.stderr)
        return EXIT_FAILED
    path = installer.config_path(args.scope, args.project_dir, dict(os.environ))
    events: tuple[str, ...] = getattr(args, "events", None) or installer.DEFAULT_EVENTS
    unknown = [e for e in events if e not in installer.ALL_EVENTS]
    if install and unknown:
        # Written anyway: agents add events faster than aod learns them.
        print(f"aod: {', '.join(unknown)}: not among the {args.agent} events aod knows ({', '.join(installer.ALL_EVENTS)})",
              file=sys.stderr)
    try:
        old_text, doc = read_settings(path)
        if install:
            argv = hook_argv(args.agent, passed_on(args), on_path=args.scope == "project")
            new_doc, changes = installer.install(doc, shell_command(argv), events)
        else:
            new_doc, changes = installer.uninstall(doc)
    except SettingsError as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_FAILED
    written = apply_change(path, old_text, new_doc, changes, install=install, events=len(events), dry_run=args.dry_run)
    if written is not None:
        return written
    if install and installer.NOTE:
        print(installer.NOTE)
    return 0
