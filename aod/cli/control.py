"""`aod spawn|send|kill`: starting, talking to and ending agents, through the daemon.

Like queries.py, only argparse is imported at module level (main.py imports this module to
build its parser for every command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from aod.cli.output import dump_json, emit, say_no_daemon

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("spawn", "send", "kill")
EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
# Spawning may create a git worktree first: give the daemon longer than a query.
SPAWN_TIMEOUT = 90.0


def add_parsers(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    parents = list(parents)
    spawn = subparsers.add_parser(
        "spawn", parents=parents, help="start an agent in a new tmux session",
        usage="aod spawn [--project PATH] [--agent NAME] [--worktree] [--name N] [--json] -- COMMAND...",
    )
    spawn.add_argument("--project", default=".", help="the project directory (default: the current one)")
    spawn.add_argument("--agent", default="claude-code",
                       help="which agent runs (default: claude-code); without a command, its own: claude, codex, "
                       "gemini, cursor-agent, opencode")
    spawn.add_argument("--worktree", action="store_true", help="run in a new git worktree on a new branch")
    spawn.add_argument("--name", help="a title for the session (also names the worktree branch)")
    spawn.add_argument("--json", action="store_true", help="print the session object")
    spawn.add_argument("agent_command", nargs=argparse.REMAINDER, metavar="-- COMMAND...", help="what to run, after -- (default: the agent's own command)")

    send = subparsers.add_parser("send", parents=parents, help="type a message into an agent's tmux pane")
    send.add_argument("id", metavar="ID", help="session id")
    send.add_argument("message", nargs="+", metavar="MESSAGE", help="the text (several words are joined; - reads stdin)")
    send.add_argument("--force", action="store_true", help="type even when the agent waits for an answer")
    send.add_argument("--json", action="store_true", help="print the API JSON")

    kill = subparsers.add_parser("kill", parents=parents, help="end an agent's runtime and mark it killed")
    kill.add_argument("id", metavar="ID", help="session id")
    kill.add_argument("--json", action="store_true", help="print the session object")

    for name, parser in (("spawn", spawn), ("send", send), ("kill", kill)):
        parser.set_defaults(control_command=name)


def run(args: argparse.Namespace) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    command = args.control_command
    client = DaemonClient(socket_path, timeout=SPAWN_TIMEOUT if command == "spawn" else 10.0)
    try:
        if command == "spawn":
            return _spawn(client, args)
        if command == "send":
            return _send(client, args)
        return _kill(client, args)
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        print(f"aod: {exc.message} ({exc.code})", file=sys.stderr)
        if exc.code == "waiting_input":
            # The API's words name the request field; the user needs the flag.
            import shlex

            print(f"aod: to type anyway: aod send --force {shlex.quote(args.id)} MESSAGE...", file=sys.stderr)
        return {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(exc.status, EXIT_DAEMON_ERROR)
    except _UsageError as exc:
        print(f"aod {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _UsageError(Exception):
    pass


def _spawn(client: Any, args: argparse.Namespace) -> int:
    import os

    command = list(args.agent_command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        from aod.runtime.spawn import DEFAULT_COMMANDS

        if args.agent not in DEFAULT_COMMANDS:
            raise _UsageError(f"nothing to run: aod knows no command for agent {args.agent!r}; give it after --, "
                              "e.g. aod spawn --agent aider -- aider")
        command = list(DEFAULT_COMMANDS[args.agent])
    body = {
        "project": os.path.abspath(args.project),
        "command": command,
        "agent": args.agent,
        "worktree": args.worktree,
        "name": args.name,
    }
    _, session = client.post_json("/v1/sessions", {k: v for k, v in body.items() if v is not None})
    emit(dump_json(session) if args.json else str(session["id"]))
    return EXIT_OK


def _send(client: Any, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    text = _stdin_message() if args.message == ["-"] else " ".join(args.message)
    _, reply = client.post_json(f"/v1/sessions/{quote(args.id, safe='')}/send", {"message": text, "force": args.force})
    if args.json:
        emit(dump_json(reply))
    return EXIT_OK


def _stdin_message() -> str:
    # `echo hi | aod send ID -` ends with the newline every text file has; typed before the
    # Enter that send adds anyway, it would submit an extra empty line. One only: the rest is
    # the user's.
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def _kill(client: Any, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    _, session = client.post_json(f"/v1/sessions/{quote(args.id, safe='')}/kill", {})
    emit(dump_json(session) if args.json else f"{session['id']} {session['status']}")
    return EXIT_OK
