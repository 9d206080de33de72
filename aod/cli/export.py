"""`aod export ID`: one session written out whole, as JSONL for tools or Markdown for people
(GET /v1/sessions/{id}/export), streamed to stdout as it arrives.

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from aod.cli.output import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_UNAVAILABLE

EXIT_NOT_FOUND = 4


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("export", parents=list(parents), help="write a session out whole: JSONL or Markdown")
    cmd.add_argument("id", metavar="ID", help="session id, as `aod sessions` lists it")
    cmd.add_argument("--format", choices=("jsonl", "md"), default="jsonl",
                     help="jsonl: every event with its payload, one per line (default); md: a readable account")


def run(args: argparse.Namespace) -> int:
    import sys

    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args
    from aod.cli.output import say_no_daemon, say_refused

    socket_path = socket_from_args(args)
    try:
        lines = DaemonClient(socket_path).stream(f"/v1/sessions/{args.id}/export", {"format": args.format},
                                                 {"Accept": "*/*"})
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        if exc.status == 404:
            print(f"aod: no session {args.id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    out = sys.stdout
    try:
        for line in lines:
            out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_OK
