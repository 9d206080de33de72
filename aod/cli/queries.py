"""`aod status|sessions|show|events`: read-only queries answered by the daemon over its socket.

Only argparse is imported at module level, because main.py imports this module to build its
parser for every command (`aod hook` included); the HTTP client, the renderers and the config
are imported when a query actually runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aod.cli.output import dump_json, emit, fetch_list, positive_int, say_no_daemon, say_refused, table_width

if TYPE_CHECKING:
    from aod.cli.client import DaemonClient

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("status", "sessions", "show", "events")
EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
DEFAULT_LIMIT = 50
# Reconnect backoff for --follow: doubling up to the server's `retry:` advice (2 s).
FOLLOW_FIRST_DELAY = 0.1
def add_parsers(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Register the query commands on main.py's subparsers (`parents` carry the global options)."""
    parents = list(parents)

    status = subparsers.add_parser("status", parents=parents, help="is the daemon running, and what does it hold")
    status.add_argument("--json", action="store_true", help="print the API JSON")

    sessions = subparsers.add_parser("sessions", parents=parents, help="list sessions, most recent first")
    sessions.add_argument("--status", help="only this display status (e.g. needs_input, working)")
    sessions.add_argument("--project", help="only this project id")
    sessions.add_argument("--agent", help="only this agent (e.g. claude-code)")
    sessions.add_argument("--active", action="store_true", help="only sessions that have not terminated")
    sessions.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                          help=f"at most N sessions (page size with --all; default {DEFAULT_LIMIT})")
    sessions.add_argument("--all", action="store_true", help="every matching session, page after page")
    sessions.add_argument("--json", action="store_true", help="print the API JSON")

    show = subparsers.add_parser("show", parents=parents, help="one session: PRs, checks, reactions, events")
    show.add_argument("id", metavar="ID", help="session id, as `aod sessions` lists it")
    show.add_argument("--json", action="store_true", help="print the API JSON")

    events = subparsers.add_parser("events", parents=parents, help="list stored hook events, newest first")
    events.add_argument("--session", metavar="ID", help="only this session's events")
    events.add_argument("--kind", help="only this hook event name (e.g. PreToolUse, Stop)")
    events.add_argument("--tool", help="only this tool name (e.g. Bash)")
    events.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                        help=f"at most N events (default {DEFAULT_LIMIT})")
    events.add_argument("--json", action="store_true", help="print the API JSON (with --follow: one change per line)")
    events.add_argument("--follow", "-f", action="store_true",
                        help="print every change as it happens (until Ctrl-C); survives daemon restarts")

    # Dispatch on our own key, so run() does not depend on the `dest` main.py gives its subparsers.
    for name, parser in (("status", status), ("sessions", sessions), ("show", show), ("events", events)):
        parser.set_defaults(query_command=name)


def run(args: argparse.Namespace) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    client = DaemonClient(socket_path)
    command = getattr(args, "query_command", None) or args.command
    try:
        if command == "status":
            return _status(client, args)
        if command == "sessions":
            return _sessions(client, args)
        if command == "show":
            return _show(client, args)
        if command == "events":
            return _follow(client, args) if args.follow else _events(client, args)
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        if command in ("show", "events") and exc.status == 404:
            print(f"aod: no session {args.id if command == 'show' else args.session}", file=sys.stderr)
            return EXIT_NOT_FOUND
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    raise ValueError(f"not a query command: {command}")


# --- commands ---------------------------------------------------------------------------------


def _status(client: DaemonClient, args: argparse.Namespace) -> int:
    from aod.cli import render

    _, body = client.get_json("/v1/status")
    emit(dump_json(body) if args.json else render.status_report(body))
    return EXIT_OK


def _sessions(client: DaemonClient, args: argparse.Namespace) -> int:
    from aod.cli import render

    params = {
        "status": args.status,
        "project": args.project,
        "agent": args.agent,
        "active": 1 if args.active else None,
        "limit": args.limit,
    }
    body, more = fetch_list(client, "/v1/sessions", params, every_page=args.all)
    if args.json:
        emit(dump_json(body))
    else:
        emit(render.sessions_table(body.get("items") or [], width=table_width()))
        if more:
            # stderr, so the hint never ends up in a pipe that expects rows.
            print(f"aod: more than {args.limit} sessions; see them all with --all", file=sys.stderr)
    return EXIT_OK


def _show(client: DaemonClient, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from aod.cli import render

    # Quoted whole: an id with a slash must stay one path segment, not reach another route.
    _, body = client.get_json(f"/v1/sessions/{quote(args.id, safe='')}")
    emit(dump_json(body) if args.json else render.session_detail(body, width=table_width()))
    return EXIT_OK


def _events(client: DaemonClient, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from aod.cli import render

    # The session's own route answers 404 for a session that does not exist, where the
    # filter on /v1/events would answer an empty list and hide a mistyped id.
    path = f"/v1/sessions/{quote(args.session, safe='')}/events" if args.session else "/v1/events"
    params = {"kind": args.kind, "tool": args.tool, "limit": args.limit}
    body, _ = fetch_list(client, path, params, every_page=False)
    emit(dump_json(body) if args.json else render.events_table(body.get("items") or [], width=table_width()))
    return EXIT_OK


def _follow(client: DaemonClient, args: argparse.Namespace) -> int:
    """Follow GET /v1/stream; after a drop, reconnect with the last id, so nothing is missed or repeated."""
    import signal
    import time

    from aod.cli.client import DaemonError, DaemonUnavailable

    # Ctrl-C is how a follow ends. A process started with SIGINT ignored (a background job of
    # a non-interactive shell, and so a test runner started from one) inherits that, Python
    # keeps it, and the follow could then never be stopped by SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    follower = _Follower(args)
    delay = FOLLOW_FIRST_DELAY
    try:
        while True:
            try:
                lines = client.stream("/v1/stream", follower.params(), follower.headers())
            except (DaemonUnavailable, DaemonError) as exc:
                if isinstance(exc, DaemonError) and exc.status != 503:
                    raise  # a refused request stays refused
                if isinstance(exc, DaemonUnavailable) and not follower.connected_once:
                    raise  # nothing is running: say so (exit 3) instead of waiting silently
                # 503: the daemon is starting or stopping; either way it is worth another try.
                time.sleep(delay)
                delay = min(delay * 2, follower.max_delay())
                continue
            if follower.connected_once:
                print("aod: reconnected", file=sys.stderr)
            follower.connected_once = True
            delay = FOLLOW_FIRST_DELAY
            follower.consume(lines)
            print("aod: the stream ended (daemon stopped?); reconnecting", file=sys.stderr)
    except KeyboardInterrupt:
        return EXIT_OK


class _Follower:
    """What survives reconnects: the last id, and the server's advice on how long to wait."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.connected_once = False

    def params(self) -> dict[str, Any]:
        # Kind and tool filter hook events; other entities have neither.
        only_events = self.args.kind or self.args.tool
        return {"session": self.args.session, "entities": "event" if only_events else None}

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_id} if self.last_id else {}

    def max_delay(self) -> float:
        return (self.retry_ms or 2000) / 1000

    def consume(self, lines: Any) -> None:
        import http.client
        import json

        from aod.cli import render
        from aod.cli.client import EventStreamParser

        parser = EventStreamParser(self.last_id)
        try:
            for line in lines:
                event = parser.feed(line)
                self.retry_ms = parser.retry_ms or self.retry_ms
                if event is None:
                    continue
                self.last_id = event.id
                try:
                    body = json.loads(event.data)
                except ValueError:
                    continue
                if event.event == "reset":
                    print(f"aod: the stream restarted at {body.get('head')} (missed changes were pruned "
                          "or the database was replaced)", file=sys.stderr)
                    if self.args.json:
                        emit(json.dumps({"reset": body}))
                    continue
                if not self._wanted(body):
                    continue
                emit(json.dumps(body) if self.args.json else render.change_line(body))
        except (OSError, http.client.HTTPException):
            pass  # the connection dropped; the caller reconnects from self.last_id
        finally:
            lines.close()

    def _wanted(self, change: dict[str, Any]) -> bool:
        data = change.get("data") or {}
        if self.args.kind and data.get("kind") != self.args.kind:
            return False
        return not (self.args.tool and data.get("tool_name") != self.args.tool)


# --- helpers ----------------------------------------------------------------------------------
