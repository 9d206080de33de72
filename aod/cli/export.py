"""`aod export ID`: one session written out whole, as JSONL for tools or Markdown for people
(GET /v1/sessions/{id}/export), streamed to stdout as it arrives.

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from aod.cli.output import EXIT_OK


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("export", parents=list(parents), help="write a session out whole: JSONL or Markdown")
    cmd.add_argument("id", metavar="ID", help="session id, as `aod sessions` lists it")
    cmd.add_argument("--format", choices=("jsonl", "md"), default="jsonl",
                     help="jsonl: every event with its payload, one per line (default); md: a readable account")


def run(args: argparse.Namespace) -> int:
    import sys

    from aod.cli.output import session_stream_or_exit

    lines = session_stream_or_exit(args, "export", {"format": args.format}, {"Accept": "*/*"})
    if isinstance(lines, int):
        return lines
    out = sys.stdout
    try:
        for line in lines:
            out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_OK
