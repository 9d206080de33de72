"""`aod replay ID`: a stored session's events again, live, with their original timing
(GET /v1/sessions/{id}/replay).

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from aod.cli.output import EXIT_DAEMON_ERROR, EXIT_OK

RECONNECTS = 5  # in a row, without an event between them


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("replay", parents=list(parents),
                                help="replay a session's events with their original timing (Ctrl-C stops)")
    cmd.add_argument("id", metavar="ID", help="session id, as `aod sessions` lists it")
    cmd.add_argument("--speed", type=float, default=1.0, help="how many times faster than it happened (0.1 to 100; default 1)")
    cmd.add_argument("--from", dest="start", metavar="T",
                     help="start at this event id or RFC 3339 time instead of the first event")
    cmd.add_argument("--max-gap", type=float, metavar="SECONDS",
                     help="wait at most this long (before --speed) between two events (default 10)")
    cmd.add_argument("--json", action="store_true", help="print each frame's JSON, one per line")


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import time

    from aod.cli.client import EventStreamParser
    from aod.cli.output import session_stream_or_exit

    signal.signal(signal.SIGINT, signal.default_int_handler)
    params = {"speed": args.speed, "from": args.start, "max_gap": args.max_gap}
    parser = EventStreamParser()
    tries = 0
    try:
        while True:
            headers = {"Last-Event-ID": parser.last_id} if parser.last_id else None
            lines = session_stream_or_exit(args, "replay", params, headers)
            if isinstance(lines, int):
                return lines
            for line in lines:
                event = parser.feed(line)
                if event is None:
                    continue
                if event.event == "end":
                    return EXIT_OK
                tries = 0
                _show(event.data, as_json=args.json)
            # The connection dropped before `end`: go on after the last event shown.
            tries += 1
            if tries > RECONNECTS:
                print("aod: the replay connection keeps dropping", file=sys.stderr)
                return EXIT_DAEMON_ERROR
            time.sleep(0.2 * tries)
    except KeyboardInterrupt:
        return EXIT_OK


def _show(data: str, *, as_json: bool) -> None:
    import json

    from aod.cli.output import emit

    if as_json:
        emit(data)
        return
    frame = json.loads(data)
    event, replay = frame.get("data") or {}, frame.get("replay") or {}
    gap = f"  (+{replay['gap_ms'] / 1000:.1f} s, shortened)" if replay.get("shortened") else ""
    parts = [str(frame.get("at")), f"#{frame.get('id')}", str(event.get("kind"))]
    if event.get("tool_name"):
        parts.append(str(event["tool_name"]))
    if event.get("ok") is False:
        parts.append("failed")
    if isinstance(event.get("duration_ms"), int):
        parts.append(f"{event['duration_ms'] / 1000:.1f} s")
    emit("  ".join(parts) + gap)
