"""`aod hooks install|uninstall`: aod's hook entries in Claude Code's settings.json.

Which entries are aod's: a handler is aod's when its command is exactly
`<python> -S <dir>/aod/hook.py` followed only by the client's own options (`--agent NAME`,
`--data-dir DIR`, `--socket PATH`, `--config FILE`). The identity is the command itself, not a
marker key: Claude Code drops unknown keys when it rewrites settings.json (and newer versions
warn about them), and a trailing `# aod` comment is not safe in every shell. Matching any
`<dir>` (not only this install's) lets install replace, and uninstall remove, entries written
by an aod that has since moved to another venv; a user's own command, even one that wraps the
client (`... hook.py | tee log`), never matches.

Install puts one matcher group of its own per event, after the user's groups, so no group of
the user's is ever edited; uninstall removes aod's handlers, and a group, event list or `hooks`
table (or the file itself) only when removing aod's handlers emptied it. Key order and every
other key survive.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from pathlib import Path

from aod.hook import DEFAULT_AGENT, write_atomically

# Not typing.TYPE_CHECKING: every aod command imports this module, and typing costs ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "DEFAULT_EVENTS",
    "TOOL_EVENTS",
    "SettingsError",
    "add_parser",
    "hook_command",
    "install_entries",
    "is_aod_handler",
    "main",
    "run",
    "settings_path",
    "uninstall_entries",
]

EXIT_FAILED = 1
# Seconds Claude Code gives the hook before killing it; the client waits for the daemon far
# less (hook.MAX_TIMEOUT) and keeps the rest for spooling.
HOOK_TIMEOUT = 5
# Events whose matcher is a tool name: "*" matches every tool. The others take no matcher, or
# one on something else (a session source, an agent type), and match everything without it.
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest")
# What aod's lifecycle reads (DESIGN §4), plus a few events it stores for the record. Left out
# on purpose: PostToolBatch (every batch would wait for one more process, for nothing the
# tool events do not say), and events whose hooks change behaviour (WorktreeCreate replaces
# git itself). A Claude Code older than an event rejects the whole settings file ("Invalid
# key in record"); `--events` then installs the subset it knows.
DEFAULT_EVENTS = (
    "SessionStart",
    "SessionEnd",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "TaskCreated",
    "CwdChanged",
    "Elicitation",
)
_CLIENT_OPTIONS = ("--agent", "--data-dir", "--socket", "--config")
# The daemon's rule for agent names (aod.ingest.envelope): a name it would reject is refused here.
_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_EVENT = re.compile(r"[A-Z][A-Za-z]{1,63}")


class SettingsError(Exception):
    """A settings file aod will not edit; the message says which and why."""


# --- which file, which command ------------------------------------------------------------------


def settings_path(
    scope: str, project_dir: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Path:
    """The settings.json of `scope`: user (honours CLAUDE_CONFIG_DIR), project, or local (unshared)."""
    env = dict(os.environ) if env is None else env
    if scope == "user":
        configured = env.get("CLAUDE_CONFIG_DIR")
        root = Path(os.path.expanduser(configured)) if configured else Path.home() / ".claude"
        return Path(os.path.abspath(root / "settings.json"))
    project = Path(project_dir) if project_dir else Path.cwd()
    name = "settings.local.json" if scope == "local" else "settings.json"
    return Path(os.path.abspath(project / ".claude" / name))


def hook_command(agent: str = DEFAULT_AGENT, options: Sequence[str] = ()) -> str:
    """The shell command that runs this install's hook client: fast (-S: no site-packages scan)."""
    import aod.hook

    if not sys.executable:
        raise SettingsError("cannot tell which Python runs aod (sys.executable is empty)")
    argv = [os.path.abspath(sys.executable), "-S", os.path.abspath(aod.hook.__file__)]
    if agent != DEFAULT_AGENT:
        argv += ["--agent", agent]
    return shlex.join([*argv, *options])


def _client_options(command: object) -> dict[str, str] | None:
    """The client options of an aod hook command, or None when the command is not aod's."""
    if not isinstance(command, str):
        return None
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if len(argv) < 3 or argv[1] != "-S" or not argv[2].replace("\\", "/").endswith("/aod/hook.py"):
        return None
    options: dict[str, str] = {}
    rest = argv[3:]
    while rest:
        name, eq, value = rest[0].partition("=")
        if name not in _CLIENT_OPTIONS or (not eq and len(rest) < 2):
            return None
        if not eq:
            value, rest = rest[1], rest[1:]
        options[name] = value
        rest = rest[1:]
    return options


def is_aod_handler(handler: object, agent: str | None = None) -> bool:
    """Whether `handler` (one item of a group's "hooks") is aod's; with `agent`, for that agent only."""
    if not isinstance(handler, dict) or handler.get("type") != "command":
        return False
    options = _client_options(handler.get("command"))
    return options is not None and (agent is None or options.get("--agent", DEFAULT_AGENT) == agent)


# --- editing the document -----------------------------------------------------------------------


class Changes:
    """What an edit did, per aod entry. (A plain class: main.py imports this module for every
    command, to register `hooks`, and dataclasses would cost each one a few ms.)"""

    def __init__(self) -> None:
        self.added = 0
        self.updated = 0
        self.removed = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def describe(self) -> str:
        counts = (("added", self.added), ("updated", self.updated), ("removed", self.removed))
        return ", ".join(f"{verb} {n} aod hook entr{'y' if n == 1 else 'ies'}" for verb, n in counts if n)


def _group(event: str, command: str) -> dict[str, Any]:
    handler = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}
    return {"matcher": "*", "hooks": [handler]} if event in TOOL_EVENTS else {"hooks": [handler]}


def _strip(groups: list[Any], agent: str | None) -> tuple[list[Any], int]:
    """`groups` without aod's handlers, and how many went; a group emptied by that goes too."""
    kept: list[Any] = []
    removed = 0
    for group in groups:
        handlers = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(handlers, list):
            kept.append(group)
            continue
        mine = [h for h in handlers if is_aod_handler(h, agent)]
        if not mine:
            kept.append(group)
            continue
        removed += len(mine)
        rest = [h for h in handlers if not is_aod_handler(h, agent)]
        if rest:
            kept.append({**group, "hooks": rest})
    return kept, removed


def _hooks_table(doc: dict[str, Any]) -> dict[str, Any]:
    hooks = doc.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError(f'"hooks" is {_kind(hooks)}, not an object')
    return hooks


def install_entries(
    doc: dict[str, Any], command: str, events: Sequence[str] = DEFAULT_EVENTS
) -> tuple[dict[str, Any], Changes]:
    """A copy of `doc` where each of `events` has exactly one aod group running `command`.

    Any other aod entry (another venv, another agent, an event no longer installed) goes: one
    settings file feeds one Claude Code, whose events must reach aod once, not once per entry.
    """
    doc = json.loads(json.dumps(doc))  # a deep copy that keeps key order
    hooks = _hooks_table(doc)
    changes = Changes()
    for event in [*hooks, *(e for e in events if e not in hooks)]:
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            if event in events:
                raise SettingsError(f'"hooks.{event}" is {_kind(groups)}, not a list')
            continue
        want = _group(event, command) if event in events else None
        ours = [g for g in groups if isinstance(g, dict) and any(is_aod_handler(h) for h in _handlers(g))]
        if ours == ([want] if want else []):
            continue
        kept, removed = _strip(groups, None)
        if want is None:
            changes.removed += removed
        else:
            kept.append(want)
            if removed:
                changes.updated += 1
                changes.removed += removed - 1
            else:
                changes.added += 1
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if hooks and "hooks" not in doc:
        doc["hooks"] = hooks
    elif not hooks and "hooks" in doc and changes.changed:
        del doc["hooks"]
    return doc, changes


def uninstall_entries(doc: dict[str, Any], agent: str | None = None) -> tuple[dict[str, Any], Changes]:
    """A copy of `doc` without aod's handlers (only `agent`'s, when given)."""
    doc = json.loads(json.dumps(doc))
    if "hooks" not in doc:
        return doc, Changes()
    hooks = _hooks_table(doc)
    changes = Changes()
    for event, groups in list(hooks.items()):
        if not isinstance(groups, list):
            continue
        kept, removed = _strip(groups, agent)
        if not removed:
            continue
        changes.removed += removed
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks and changes.changed:
        del doc["hooks"]
    return doc, changes


def _handlers(group: dict[str, Any]) -> list[Any]:
    handlers = group.get("hooks")
    return handlers if isinstance(handlers, list) else []


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


# --- the file -----------------------------------------------------------------------------------


def read_settings(path: Path) -> tuple[str | None, dict[str, Any]]:
    """The file's text (None when it does not exist) and its document; refuses what it cannot edit."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, {}
    except UnicodeDecodeError:
        raise SettingsError(f"{path} is not UTF-8 text; nothing was changed") from None
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        return text, {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SettingsError(
            f"{path} is not valid JSON ({exc}); fix it or move it away, nothing was changed"
        ) from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{path} holds {_kind(doc)}, not a JSON object; nothing was changed")
    return text, doc


def render(doc: dict[str, Any]) -> str:
    # Claude Code's own layout: two-space indent, UTF-8 as is.
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_settings(path: Path, old_text: str | None, new_text: str) -> Path | None:
    """Replace the file atomically; returns the backup of the previous content, if there was one."""
    # A settings.json symlinked from a dotfiles repo stays a symlink: the target is what changes.
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    # New files are private: settings.json can hold API keys in its "env".
    mode = 0o600
    backup = None
    if old_text is not None:
        mode = target.stat().st_mode & 0o7777
        backup = target.with_name(target.name + ".bak")
        _atomic_write(backup, old_text, mode)
    _atomic_write(target, new_text, mode)
    return backup


def _atomic_write(path: Path, text: str, mode: int) -> None:
    write_atomically(str(path), str(path.with_name(f".{path.name}.{os.getpid()}.tmp")), text.encode("utf-8"), mode)


# --- the command --------------------------------------------------------------------------------


def _agent_name(value: str) -> str:
    if not _AGENT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"invalid agent name {value!r}: letters, digits, '.', '_', ':' or '-', at most 128"
        )
    return value


def _event_list(value: str) -> tuple[str, ...]:
    events = tuple(dict.fromkeys(e.strip() for e in value.split(",") if e.strip()))
    bad = [e for e in events if not _EVENT.fullmatch(e)]
    if bad or not events:
        raise argparse.ArgumentTypeError(f"expected hook event names like PreToolUse,Stop, got {value!r}")
    return events


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    """Register `hooks install|uninstall` on `subparsers`; dispatch `args.command == "hooks"` to `run`."""
    parents = list(parents)
    hooks = subparsers.add_parser(
        "hooks",
        parents=parents,
        help="add or remove aod's hooks in Claude Code's settings.json",
        description="Add or remove aod's hook entries in Claude Code's settings.json.",
    )
    actions = hooks.add_subparsers(dest="hooks_command", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install",
        parents=parents,
        help="make every Claude Code hook event reach aod (idempotent)",
        description="Add aod's hook entries; the global --data-dir/--socket/--config, when given, "
        "are passed on to the hook client.",
    )
    uninstall = actions.add_parser("uninstall", parents=parents, help="remove exactly the entries aod added")
    for parser in (install, uninstall):
        parser.add_argument(
            "--scope",
            choices=("user", "project", "local"),
            default="user",
            help="user: ~/.claude/settings.json (or $CLAUDE_CONFIG_DIR); project: "
            "<project>/.claude/settings.json; local: <project>/.claude/settings.local.json",
        )
        parser.add_argument("--project-dir", metavar="DIR", help="the project for --scope project/local (default: cwd)")
        parser.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
    install.add_argument(
        "--agent", type=_agent_name, default=DEFAULT_AGENT, help=f"agent name the events carry (default {DEFAULT_AGENT})"
    )
    install.add_argument(
        "--events",
        type=_event_list,
        default=DEFAULT_EVENTS,
        metavar="LIST",
        help="comma-separated hook events (default: " + ",".join(DEFAULT_EVENTS) + ")",
    )
    uninstall.add_argument("--agent", type=_agent_name, default=None, help="only this agent's entries (default: all of aod's)")
    return hooks


def _passed_on(args: argparse.Namespace) -> list[str]:
    # Absolute now: the hook runs in the agent's cwd, not in this one.
    from aod.paths import expand_path

    options = []
    for name, dest in (("--data-dir", "data_dir"), ("--socket", "socket"), ("--config", "config")):
        value = getattr(args, dest, None)
        if value:
            options += [name, expand_path(value, os.environ)]
    return options


def run(args: argparse.Namespace) -> int:
    """`aod hooks install|uninstall`: 0 when done (or nothing to do), 1 when refused or failed."""
    path = settings_path(args.scope, args.project_dir)
    try:
        old_text, doc = read_settings(path)
        if args.hooks_command == "install":
            new_doc, changes = install_entries(doc, hook_command(args.agent, _passed_on(args)), args.events)
        else:
            new_doc, changes = uninstall_entries(doc, args.agent)
    except SettingsError as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_FAILED
    install = args.hooks_command == "install"
    if not changes.changed:
        if install:
            print(f"aod hooks already installed in {path} ({len(args.events)} events)")
        else:
            print(f"no aod hook entries in {path}" + ("" if old_text is not None else " (no such file)"))
        return 0
    if not install and not new_doc and not path.is_symlink():
        # Nothing but aod's entries was in it (aod creates the file when there is none): an empty
        # `{}` left behind is clutter. A symlink is the user's (a dotfiles repo): that stays.
        return _remove_settings(path, changes, args.dry_run)
    new_text = render(new_doc)
    if args.dry_run:
        import difflib

        before = (old_text or "").splitlines(keepends=True)
        sys.stdout.writelines(
            difflib.unified_diff(before, new_text.splitlines(keepends=True), f"{path} (now)", f"{path} (after)")
        )
        print(f"dry run: would have {changes.describe()} in {path}; nothing was written")
        return 0
    try:
        backup = write_settings(path, old_text, new_text)
    except OSError as exc:
        print(f"aod: cannot write {path}: {exc.strerror or exc}; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    where = "in" if install else "from"
    print(f"{changes.describe()} {where} {path}" + (f" (previous content in {backup})" if backup else ""))
    if install:
        print(
            "if Claude Code reports 'Invalid key in record' for an event, it predates that event: "
            "upgrade it, or reinstall with --events listing the events it knows"
        )
    return 0


def _remove_settings(path: Path, changes: Changes, dry_run: bool) -> int:
    if dry_run:
        print(f"dry run: would have {changes.describe()} and removed {path}, which then holds nothing; "
              "nothing was written")
        return 0
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        print(f"aod: cannot remove {path}: {exc.strerror or exc}; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    print(f"{changes.describe()} from {path}, and removed the file: nothing else was in it")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone `python -m aod.cli.hooks install|uninstall …`, with aod's global options."""
    common = argparse.ArgumentParser(add_help=False)
    for flag, dest in (("--data-dir", "data_dir"), ("--config", "config"), ("--socket", "socket")):
        common.add_argument(flag, dest=dest, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="aod", parents=[common])
    add_parser(parser.add_subparsers(dest="command", required=True), [common])
    return run(parser.parse_args(["hooks", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
