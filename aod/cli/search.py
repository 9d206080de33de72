"""`aod search QUERY`: full-text search over the stored events (GET /v1/search).

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from aod.cli.output import EXIT_OK

DEFAULT_LIMIT = 50


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    from aod.cli.output import positive_int

    cmd = subparsers.add_parser("search", parents=list(parents),
                                help="find events by their words: prompts, commands, file paths, errors, notifications")
    cmd.add_argument("query", metavar="QUERY",
                     help='FTS5 query: words (all must match), "a phrase", prefix*, OR, NOT, NEAR(a b)')
    cmd.add_argument("--session", metavar="ID", help="only this session's events")
    cmd.add_argument("--project", metavar="ID", help="only this project's sessions")
    cmd.add_argument("--kind", help="only this hook event name (e.g. UserPromptSubmit, PreToolUse)")
    cmd.add_argument("--since", metavar="TIME", help="only events that occurred at or after this RFC 3339 time")
    cmd.add_argument("--until", metavar="TIME", help="only events that occurred before this RFC 3339 time")
    cmd.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                     help=f"at most N hits, newest first (default {DEFAULT_LIMIT})")
    cmd.add_argument("--json", action="store_true", help="print the API JSON")


def run(args: argparse.Namespace) -> int:
    import sys

    from aod.cli.output import dump_json, emit, get_or_exit

    params = {"q": args.query, "session": args.session, "project": args.project, "kind": args.kind,
              "since": args.since, "until": args.until, "limit": args.limit}
    body = get_or_exit(args, "/v1/search", params)
    if isinstance(body, int):
        return body
    if args.json:
        emit(dump_json(body))
        return EXIT_OK
    emit(hits_text(body.get("items") or [], bold=sys.stdout.isatty()))
    if body.get("next_cursor"):
        print(f"aod: more than {args.limit} hits; narrow the query or raise --limit", file=sys.stderr)
    return EXIT_OK


def hits_text(items: Sequence[Mapping[str, Any]], *, bold: bool) -> str:
    """One hit per line: when, which session, what kind, and the snippet on one line with its
    matches in bold (a terminal) or [brackets] (a pipe)."""
    import html

    if not items:
        return "no matches"
    on, off = ("\x1b[1m", "\x1b[0m") if bold else ("[", "]")
    lines = []
    for hit in items:
        snippet = " ".join(str(hit.get("snippet") or "").split()).replace("<mark>", on).replace("</mark>", off)
        lines.append(f"{hit.get('occurred_at')}  {hit.get('session_id') or '-'}  #{hit.get('event_id')}  "
                     f"{hit.get('kind')}  {html.unescape(snippet)}")
    return "\n".join(lines)
