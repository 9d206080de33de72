"""`aod hooks install|uninstall`: aod's hook entries in Claude Code's settings.json.

What install writes: exec-form command hooks (`"command"` + `"args"`: no shell between Claude
Code and the client, so no quoting) with `"async": true`, since every aod hook only observes and
the agent must never wait for aod; with `--http`, Claude Code `http` hooks that post to the
daemon's TCP port with the token from `$AOD_TOKEN` (no process per event; but an event fired
while the daemon is down is lost, where the command hook spools it).

Which entries are aod's: a command handler whose argv is `<python> -S <dir>/aod/hook.py` or
`aod hook`, followed only by the client's own options (`--agent NAME`, `--data-dir DIR`,
`--socket PATH`, `--config FILE`); the shell-form string `<python> -S <dir>/aod/hook.py …` that
older versions wrote; and an http handler posting to a loopback `/v1/hooks/{agent}`. The
identity is the entry itself, not a marker key: Claude Code drops unknown keys when it rewrites
settings.json (and newer versions warn about them), and a trailing `# aod` comment is not safe in
every shell. Matching any `<dir>` (not only this install's) lets install replace, and uninstall
remove, entries written by an aod that has since moved to another venv; a user's own command,
even one that wraps the client (`... hook.py | tee log`), never matches.

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
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = [
    "AGENTS",
    "ALL_EVENTS",
    "DEFAULT_EVENTS",
    "NO_HTTP_EVENTS",
    "TOKEN_ENV",
    "TOOL_EVENTS",
    "SettingsError",
    "add_parser",
    "command_handler",
    "hook_argv",
    "http_handler",
    "install_entries",
    "is_aod_handler",
    "main",
    "passed_on",
    "read_settings",
    "remove_settings",
    "render",
    "run",
    "settings_path",
    "uninstall_entries",
    "write_settings",
    "write_text_atomically",
]

EXIT_FAILED = 1
# Seconds Claude Code waits for an http hook's answer. The daemon answers after its commit (ms);
# a daemon that hangs must not hold the agent longer than this.
HTTP_TIMEOUT = 2
# The environment variable Claude Code reads the token from for http hooks (it resolves only
# the names listed in a hook's `allowedEnvVars`).
TOKEN_ENV = "AOD_TOKEN"
# Every hook event of Claude Code's hooks reference (code.claude.com/docs/en/hooks), in its order.
ALL_EVENTS = (
    "SessionStart", "Setup", "UserPromptSubmit", "UserPromptExpansion", "PreToolUse",
    "PermissionRequest", "PermissionDenied", "PostToolUse", "PostToolUseFailure", "PostToolBatch",
    "Notification", "MessageDisplay", "SubagentStart", "SubagentStop", "TaskCreated", "TaskCompleted",
    "Stop", "StopFailure", "TeammateIdle", "InstructionsLoaded", "ConfigChange", "CwdChanged",
    "DirectoryAdded", "FileChanged", "WorktreeCreate", "WorktreeRemove", "PreCompact", "PostCompact",
    "Elicitation", "ElicitationResult", "SessionEnd",
)
# Left out by default, each for a reason of its own (`--events` can still name them):
# WorktreeCreate's hook replaces git's worktree creation (it must create one and print its path);
# FileChanged watches only the file names its matcher lists, and aod watches none; MessageDisplay
# fires for every chunk of streamed assistant text: a process per chunk, for display only.
# A Claude Code older than an event rejects the whole settings file ("Invalid key in record");
# `--events` then installs the subset it knows.
_NOT_BY_DEFAULT = ("WorktreeCreate", "FileChanged", "MessageDisplay")
DEFAULT_EVENTS = tuple(e for e in ALL_EVENTS if e not in _NOT_BY_DEFAULT)
# A hook there does the work itself: an aod hook would leave it undone.
_REFUSED_EVENTS = ("WorktreeCreate",)
# Events whose matcher is a tool name: "*" matches every tool. The others take no matcher, or
# one on something else (a session source, an agent type), and match everything without it.
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied")
# Events that take no `http` hook (the reference: command and mcp_tool only): `--http` wires them
# with the command hook.
NO_HTTP_EVENTS = ("SessionStart", "Setup")
_CLIENT_OPTIONS = ("--agent", "--data-dir", "--socket", "--config")
# The agents whose hook configuration `--agent` writes (the others: aod/cli/hooks_<agent>.py).
AGENTS = (DEFAULT_AGENT, "codex", "gemini", "cursor", "opencode")
# Claude Code's and Gemini's events are capitalised, Cursor's camelCase.
_EVENT = re.compile(r"[A-Za-z][A-Za-z]{1,63}")
# A pattern, compiled on first use (by re's cache): every aod command imports this module.
_HTTP_HOOK_URL = r"http://(?:127\.0\.0\.1|localhost|\[::1\]):\d{1,5}/v1/hooks/([A-Za-z0-9][A-Za-z0-9._:-]{0,127})"


class SettingsError(Exception):
    """A settings file aod will not edit, or an entry aod will not write; the message says why."""


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


def hook_argv(agent: str = DEFAULT_AGENT, options: Sequence[str] = (), *, on_path: bool = False) -> list[str]:
    """The argv that runs the hook client: this install's own (-S: no site-packages scan, the
    fastest start), or with `on_path` the `aod` that PATH finds (for a file that is committed:
    another machine has no such venv)."""
    extra = ["--agent", agent] if agent != DEFAULT_AGENT else []
    if on_path:
        import shutil

        if shutil.which("aod") is None:
            raise SettingsError(
                "no `aod` on PATH: project scope writes a file the project commits, so it must not name "
                "this machine's virtualenv; put aod on PATH (scripts/run installs it in ~/.local/bin), or, "
                "for Claude Code, use --scope local (.claude/settings.local.json, not committed)"
            )
        return ["aod", "hook", *extra, *options]
    import aod.hook

    if not sys.executable:
        raise SettingsError("cannot tell which Python runs aod (sys.executable is empty)")
    return [os.path.abspath(sys.executable), "-S", os.path.abspath(aod.hook.__file__), *extra, *options]


def command_handler(argv: Sequence[str]) -> dict[str, Any]:
    """An exec-form command hook that Claude Code starts and does not wait for."""
    return {"type": "command", "command": argv[0], "args": list(argv[1:]), "async": True}


def http_handler(tcp: str, agent: str = DEFAULT_AGENT) -> dict[str, Any]:
    """A Claude Code http hook posting the raw payload to the daemon's TCP listener `tcp` (host:port)."""
    host, _, port = tcp.rpartition(":")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {
        "type": "http",
        "url": f"http://{host}:{port}/v1/hooks/{agent}",
        "headers": {"Authorization": f"Bearer ${{{TOKEN_ENV}}}"},
        "allowedEnvVars": [TOKEN_ENV],
        "timeout": HTTP_TIMEOUT,
    }


def _options(rest: list[str]) -> dict[str, str] | None:
    options: dict[str, str] = {}
    while rest:
        name, eq, value = rest[0].partition("=")
        if name not in _CLIENT_OPTIONS or (not eq and len(rest) < 2):
            return None
        if not eq:
            value, rest = rest[1], rest[1:]
        options[name] = value
        rest = rest[1:]
    return options


def _is_client_script(argv: list[str]) -> bool:
    return len(argv) >= 3 and argv[1] == "-S" and argv[2].replace("\\", "/").endswith("/aod/hook.py")


def _client_options(handler: dict[str, Any]) -> dict[str, str] | None:
    """The client options of an aod hook handler, or None when the handler is not aod's."""
    kind, command, args = handler.get("type"), handler.get("command"), handler.get("args")
    if kind == "http":
        url = handler.get("url")
        match = re.fullmatch(_HTTP_HOOK_URL, url) if isinstance(url, str) else None
        return {"--agent": match.group(1)} if match else None
    if kind != "command" or not isinstance(command, str):
        return None
    if args is None:  # the shell form: older versions wrote it, and agents without exec form take it
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if argv[:1] == ["exec"]:  # how aod writes it for agents that run hooks through sh
            argv = argv[1:]
        if _is_client_script(argv):
            return _options(argv[3:])
        if os.path.basename(argv[0]) != "aod" or argv[1:2] != ["hook"]:
            return None
        # aod writes this form only for other agents, always naming one: a bare `aod hook` is the user's.
        options = _options(argv[2:])
        return options if options and "--agent" in options else None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return None
    argv = [command, *args]
    if _is_client_script(argv):
        return _options(argv[3:])
    if os.path.basename(command) == "aod" and args[:1] == ["hook"]:
        return _options(argv[2:])
    return None


def is_aod_handler(handler: object, agent: str | None = None) -> bool:
    """Whether `handler` (one item of a group's "hooks") is aod's; with `agent`, for that agent only."""
    if not isinstance(handler, dict):
        return False
    options = _client_options(handler)
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


def _group(event: str, handler: dict[str, Any], tool_matcher: bool) -> dict[str, Any]:
    return {"matcher": "*", "hooks": [handler]} if tool_matcher and event in TOOL_EVENTS else {"hooks": [handler]}


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
    doc: dict[str, Any], handlers: Mapping[str, dict[str, Any]],
    *, tool_matcher: bool = True,
) -> tuple[dict[str, Any], Changes]:
    """A copy of `doc` where each event of `handlers` has exactly one aod group, running its handler
    (with a "*" matcher on tool events, as Claude Code's; with `tool_matcher` false, none on any:
    an agent whose matcher is a regex matches every tool in a group without one).

    Any other aod entry (another venv, another agent, the other form, an event no longer
    installed) goes: one settings file feeds one Claude Code, whose events must reach aod once.
    """
    doc = json.loads(json.dumps(doc))  # a deep copy that keeps key order
    hooks = _hooks_table(doc)
    changes = Changes()
    for event in [*hooks, *(e for e in handlers if e not in hooks)]:
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            if event in handlers:
                raise SettingsError(f'"hooks.{event}" is {_kind(groups)}, not a list')
            continue
        want = _group(event, handlers[event], tool_matcher) if event in handlers else None
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
        write_text_atomically(backup, old_text, mode)
    write_text_atomically(target, new_text, mode)
    return backup


def write_text_atomically(path: Path, text: str, mode: int) -> None:
    """`path` holds all of `text` (UTF-8) or is untouched, through a dot-file beside it."""
    write_atomically(str(path), str(path.with_name(f".{path.name}.{os.getpid()}.tmp")), text.encode("utf-8"), mode)


# --- the command --------------------------------------------------------------------------------


def _event_list(value: str) -> tuple[str, ...]:
    events = tuple(dict.fromkeys(e.strip() for e in value.split(",") if e.strip()))
    bad = [e for e in events if not _EVENT.fullmatch(e)]
    if bad or not events:
        raise argparse.ArgumentTypeError(f"expected hook event names like PreToolUse,Stop or beforeSubmitPrompt,stop, got {value!r}")
    refused = [e for e in events if e in _REFUSED_EVENTS]
    if refused:
        raise argparse.ArgumentTypeError(
            f"{refused[0]}'s hook replaces git's worktree creation: a hook that only observes would break it"
        )
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
    for parser in (install, uninstall):
        parser.add_argument(
            "--agent", choices=AGENTS, default=DEFAULT_AGENT,
            help=f"whose configuration: {DEFAULT_AGENT} (default; settings.json), codex (~/.codex/hooks.json), "
            "gemini (~/.gemini/settings.json), cursor (~/.cursor/hooks.json), opencode (a plugin in "
            "~/.config/opencode/plugins/)",
        )
    install.add_argument(
        "--events",
        type=_event_list,
        default=None,
        metavar="LIST",
        help="comma-separated hook events of that agent (Claude Code's default: " + ",".join(DEFAULT_EVENTS) + ")",
    )
    install.add_argument(
        "--http",
        action="store_true",
        help="write Claude Code http hooks to the daemon's TCP port (token from $AOD_TOKEN) instead of "
        "command hooks: no process per event, but events fired while the daemon is down are lost",
    )
    return hooks


def passed_on(args: argparse.Namespace) -> list[str]:
    # Absolute now: the hook runs in the agent's cwd, not in this one.
    from aod.paths import expand_path

    options = []
    for name, dest in (("--data-dir", "data_dir"), ("--socket", "socket"), ("--config", "config")):
        value = getattr(args, dest, None)
        if value:
            options += [name, expand_path(value, os.environ)]
    return options


def _handlers_for(args: argparse.Namespace, tcp: str | None) -> dict[str, dict[str, Any]]:
    """The handler of each event to install: http hooks to `tcp` when given, else command hooks."""
    events: tuple[str, ...] = args.events
    http = http_handler(tcp, args.agent) if tcp else None
    if http is not None and not any(e in NO_HTTP_EVENTS for e in events):
        return dict.fromkeys(events, http)
    command = command_handler(hook_argv(args.agent, passed_on(args), on_path=args.scope == "project"))
    return {e: http if http is not None and e not in NO_HTTP_EVENTS else command for e in events}


def _daemon_tcp(args: argparse.Namespace) -> tuple[str, Path]:
    """The TCP address http hooks post to and the token file they need: the running daemon's
    own (a port 0 is resolved there), else server.tcp and the data dir of the config."""
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import config_from_args_or_raise, socket_from_args
    from aod.config import ConfigError

    try:
        _, status = DaemonClient(socket_from_args(args)).get_json("/v1/status")
        tcp, data_dir = status.get("tcp") or "", Path(status["data_dir"])
    except (DaemonUnavailable, DaemonError):
        try:
            config = config_from_args_or_raise(args)
        except ConfigError as exc:
            raise SettingsError(f"invalid config: {exc}") from None
        tcp, data_dir = config.server.tcp, config.data_dir
        if tcp.endswith(":0"):
            raise SettingsError(
                f"server.tcp is {tcp!r} (any free port): start the daemon first, so the port it took can be written"
            ) from None
    if not tcp:
        raise SettingsError('--http needs the daemon\'s TCP listener, and server.tcp is "": set it and restart the daemon')
    return tcp, data_dir / "token"


def run(args: argparse.Namespace) -> int:
    """`aod hooks install|uninstall` for Claude Code: 0 when done (or nothing to do), 1 when refused or failed.

    aod/cli/hooks_agents.py runs `aod hooks` and hands Claude Code's over to this."""
    install = args.hooks_command == "install"
    if install:
        args.events = args.events or DEFAULT_EVENTS
        lower = [e for e in args.events if not e[0].isupper()]
        if lower:
            print(f"aod: {lower[0]!r} is not a Claude Code hook event (they are capitalised: PreToolUse, Stop, …)",
                  file=sys.stderr)
            return EXIT_FAILED
    path = settings_path(args.scope, args.project_dir)
    tcp, token = None, None
    try:
        old_text, doc = read_settings(path)
        if install:
            if args.http:
                tcp, token = _daemon_tcp(args)
            new_doc, changes = install_entries(doc, _handlers_for(args, tcp))
        else:
            new_doc, changes = uninstall_entries(doc)
    except SettingsError as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_FAILED
    written = apply_change(path, old_text, new_doc, changes, install=install, events=len(getattr(args, "events", None) or ()),
                           dry_run=args.dry_run)
    if written is not None:
        return written
    if install:
        print(
            "exec-form hooks need Claude Code 2.1.139 or newer; if it reports 'Invalid key in record' for an "
            "event, it predates that event: upgrade it, or reinstall with --events listing the events it knows"
        )
        if token is not None:
            print(f"http hooks send the token from ${TOKEN_ENV}: export {TOKEN_ENV}=\"$(cat {shlex.quote(str(token))})\" where "
                  "Claude Code starts (and keep the daemon running: an event it misses is lost, not spooled)")
    return 0


def apply_change(path: Path, old_text: str | None, new_doc: dict[str, Any], changes: Changes, *, install: bool,
                 events: int, dry_run: bool) -> int | None:
    """Say, diff or write one settings file's change: an exit code when that is all, None once written."""
    if not changes.changed:
        if install:
            print(f"aod hooks already installed in {path} ({events} events)")
        else:
            print(f"no aod hook entries in {path}" + ("" if old_text is not None else " (no such file)"))
        return 0
    if not install and not new_doc and not path.is_symlink():
        # Nothing but aod's entries was in it (aod creates the file when there is none): an empty
        # `{}` left behind is clutter. A symlink is the user's (a dotfiles repo): that stays.
        return remove_settings(path, changes, dry_run)
    new_text = render(new_doc)
    if dry_run:
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
    return None


def remove_settings(path: Path, changes: Changes, dry_run: bool) -> int:
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
