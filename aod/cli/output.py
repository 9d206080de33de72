"""What every CLI command that prints daemon answers shares: argument types, pages, printing.

Only the standard library, imported lazily where it costs: main.py imports the command modules
(and so this one) on every `aod` run, the hook client's included.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aod.cli.client import DaemonClient

# The exit codes every query command shares: done, the daemon refused, no daemon answered.
EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4

# A dead-end for `--all`: a daemon bug that hands back the same cursor must not loop forever.
MAX_PAGES = 10_000


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fetch_list(
    client: DaemonClient, path: str, params: dict[str, Any], *, every_page: bool
) -> tuple[dict[str, Any], bool]:
    """The first page as the API sent it, or every page merged into one with no next cursor.

    The flag says whether more items exist than were fetched.
    """
    _, body = client.get_json(path, params)
    if not every_page:
        return body, bool(body.get("next_cursor"))
    items = list(body.get("items") or [])
    cursor, seen = body.get("next_cursor"), set[str]()
    while cursor and cursor not in seen and len(seen) < MAX_PAGES:
        seen.add(cursor)
        _, page = client.get_json(path, {**params, "cursor": cursor})
        items.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
    return {"items": items, "next_cursor": None}, False


def dump_json(body: Any) -> str:
    import json

    return json.dumps(body, indent=2)


def table_width() -> int | None:
    """The terminal's width; unlimited when piped, so `aod sessions | grep` sees whole titles.

    An explicit COLUMNS still wins: shutil.get_terminal_size (used when this is None) honours it.
    """
    import os

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 1 << 20


def emit(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # `aod events | head` closes the pipe early; that is the reader's choice, not an error.
        # Point stdout at devnull so the interpreter's final flush does not complain again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except UnicodeEncodeError:
        # A non-UTF-8 terminal cannot show every title (or the ellipsis); show what it can.
        sys.stdout.write(text.encode(sys.stdout.encoding or "ascii", "replace").decode(sys.stdout.encoding or "ascii") + "\n")


def say_no_daemon(socket_path: object) -> None:
    """What every command prints when nothing answers on the socket (it then exits 3)."""
    print(f"aod: no daemon is answering on {socket_path} (start it with `aod serve`)", file=sys.stderr)


def say_refused(exc: Any) -> None:
    """A daemon's error answer (a DaemonError), as every command prints it."""
    print(f"aod: the daemon answered {exc.status} {exc.code}: {exc.message}", file=sys.stderr)


def get_or_exit(args: argparse.Namespace, path: str, params: dict[str, Any]) -> dict[str, Any] | int:
    """The daemon's JSON answer to GET `path`, or the exit code after saying why there is none."""
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    try:
        _, body = DaemonClient(socket_path).get_json(path, params)
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    return body


def session_stream_or_exit(args: argparse.Namespace, path: str, params: dict[str, Any],
                           headers: dict[str, str] | None = None) -> Iterator[str] | int:
    """The lines of a session's stream (`path` under /v1/sessions/{args.id}), or the exit code
    after saying why there are none (no daemon, no such session, a refusal)."""
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    try:
        return DaemonClient(socket_path).stream(f"/v1/sessions/{args.id}/{path}", params, headers)
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        if exc.status == 404:
            print(f"aod: no session {args.id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        say_refused(exc)
        return EXIT_DAEMON_ERROR
