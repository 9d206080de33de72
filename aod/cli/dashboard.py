"""`aod dashboard [--url]`: the running daemon's login URL, opened in the default browser or printed.

The URL is the daemon's own: the TCP address it actually bound (`/v1/status` over the Unix
socket, so a port 0 or a socket-activated listener is right too) and the token of the data dir it
actually serves.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aod.cli.output import say_no_daemon, say_refused

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    dashboard = subparsers.add_parser("dashboard", parents=list(parents),
                                      help="open the browser dashboard (logged in) in the default browser")
    dashboard.add_argument("--url", action="store_true",
                           help="print the login URL (http://127.0.0.1:PORT/login?token=…) instead of opening it")


def login_url(tcp: str, token: str) -> str:
    host, _, port = tcp.rpartition(":")
    if ":" in host and not host.startswith("["):  # an IPv6 literal needs its brackets in a URL
        host = f"[{host}]"
    return f"http://{host}:{port}/login?token={token}"


def run(args: argparse.Namespace) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args

    socket_path = socket_from_args(args)
    try:
        _, status = DaemonClient(socket_path).get_json("/v1/status")
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        say_refused(exc)
        return EXIT_FAILED
    if not status.get("tcp"):
        print('aod: the daemon serves no TCP (server.tcp = ""), and the dashboard is served only there: '
              'set server.tcp (default "127.0.0.1:8765") and restart it', file=sys.stderr)
        return EXIT_FAILED
    token_path = Path(status["data_dir"]) / "token"
    try:
        token = token_path.read_text().strip()
    except OSError as exc:
        print(f"aod: cannot read the daemon's token {token_path}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    url = login_url(status["tcp"], token)
    if args.url:
        print(url)
        return EXIT_OK
    import webbrowser

    if not webbrowser.open(url):
        print(f"aod: no browser could be started; open {url}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
