"""`aod escalations`: the pages recorded for the human, newest first, with where each one went.

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
DEFAULT_LIMIT = 50


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    from aod.cli.output import positive_int

    cmd = subparsers.add_parser("escalations", parents=list(parents),
                                help="list escalations (pages for the human), newest first")
    cmd.add_argument("--open", action="store_true", help="only those not acknowledged yet")
    cmd.add_argument("--session", metavar="ID", help="only this session's escalations")
    cmd.add_argument("--priority", metavar="P", help="only this priority (urgent, action or info)")
    cmd.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                     help=f"at most N escalations (page size with --all; default {DEFAULT_LIMIT})")
    cmd.add_argument("--all", action="store_true", help="every matching escalation, page after page")
    cmd.add_argument("--json", action="store_true", help="print the API JSON")


def run(args: argparse.Namespace) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args
    from aod.cli.output import dump_json, emit, fetch_list, say_no_daemon, say_refused, table_width

    socket_path = socket_from_args(args)
    params = {"open": 1 if args.open else None, "session": args.session, "priority": args.priority,
              "limit": args.limit}
    try:
        body, more = fetch_list(DaemonClient(socket_path), "/v1/escalations", params, every_page=args.all)
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        if exc.status == 404:
            print(f"aod: no session {args.session}", file=sys.stderr)
            return EXIT_NOT_FOUND
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    if args.json:
        emit(dump_json(body))
        return EXIT_OK
    emit(escalations_table(body.get("items") or [], open_only=args.open, width=table_width()))
    if more:
        # stderr, so the hint never ends up in a pipe that expects rows.
        print(f"aod: more than {args.limit} escalations; see them all with --all", file=sys.stderr)
    return EXIT_OK


def _deliveries(escalation: Mapping[str, Any]) -> str:
    # "no one" is the fact worth seeing: an escalation routed to no notifier reached nobody.
    found = escalation.get("deliveries") or []
    return ", ".join(f"{d.get('notifier')} {d.get('status')}" for d in found) or "no one"


def escalations_table(
    items: Sequence[Mapping[str, Any]], *, open_only: bool = False, now: datetime | None = None,
    width: int | None = None,
) -> str:
    """One row per escalation: its id (for `aod ack`), what and where, and who was paged."""
    from datetime import UTC

    from aod.cli.render import Col, relative_time, table

    if not items:
        return "no open escalations" if open_only else "no escalations"
    at = now or datetime.now(UTC)
    return table(
        items,
        [
            Col("ID", "id", align="right", shrink=False),
            Col("PRIORITY", "priority", shrink=False),
            ("REACTION", "reaction"),
            Col("SESSION", "session_id", shrink=False),
            Col("CREATED", lambda e: relative_time(e.get("created_at"), at), shrink=False),
            Col("ACKED", lambda e: relative_time(e["acked_at"], at) if e.get("acked_at") else "NOT ACKED",
                shrink=False),
            ("SENT TO", _deliveries),
            ("MESSAGE", "message"),
        ],
        width,
    )
