"""`aod ack ESCALATION_ID`: acknowledge an escalation (no further deliveries of it go out)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from aod.cli.output import say_no_daemon, say_refused

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4


def _escalation_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 18) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not an escalation id (a positive whole number): {text!r}")
    return int(text)


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    ack = subparsers.add_parser("ack", parents=list(parents), help="acknowledge an escalation")
    ack.add_argument("escalation_id", metavar="ESCALATION_ID", type=_escalation_id,
                     help="the escalation's number, as `aod show` lists it (#N)")
    ack.add_argument("--json", action="store_true", help="print the API JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    try:
        _, body = DaemonClient(socket_path).post_json(f"/v1/escalations/{args.escalation_id}/ack", {})
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        if exc.status == 404:
            print(f"aod: no escalation {args.escalation_id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(f"escalation #{body.get('id')} ({body.get('reaction')}, session {body.get('session_id')})"
              f" acknowledged at {body.get('acked_at')}")
    return EXIT_OK
