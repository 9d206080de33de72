"""`aod import claude`: Claude Code's transcripts from before aod, through the running daemon (`imports`: `import` is a keyword).

Only argparse at module level (main.py imports this to build its parser for every command).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
# A request's body stays well under ingest.max_body_bytes (16 MiB by default).
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_SESSIONS = 200


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("import", parents=list(parents),
                                help="import history an agent wrote before aod ran (Claude Code's transcripts)")
    cmd.add_argument("source", choices=("claude",), metavar="SOURCE", help="claude: Claude Code's transcripts")
    cmd.add_argument("--since", metavar="DATE",
                     help="only sessions active since this date (YYYY-MM-DD, local) or RFC 3339 instant")
    cmd.add_argument("--projects", metavar="DIR",
                     help="Claude Code's projects directory (default $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects)")
    cmd.add_argument("--json", action="store_true", help="print the summary as JSON")


def default_projects() -> Path:
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config) if config else Path.home() / ".claude") / "projects"


class Progress:
    """One line on a terminal's stderr, redrawn at most 10 times a second; nothing elsewhere."""

    def __init__(self, total: int) -> None:
        self.total, self.shown_at, self.on = total, 0.0, sys.stderr.isatty()

    def update(self, done: int, sessions: int) -> None:
        now = time.monotonic()
        if not self.on or (now - self.shown_at < 0.1 and done < self.total):
            return
        self.shown_at = now
        width = 30
        filled = width * done // max(self.total, 1)
        sys.stderr.write(f"\rimporting [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} transcripts, "
                         f"{sessions} sessions")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")


def _batches(bodies: Iterator[tuple[dict[str, Any], int]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for body, n in bodies:
        if batch and (size + n > MAX_BATCH_BYTES or len(batch) >= MAX_BATCH_SESSIONS):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += n
    if batch:
        yield batch


def _chunks(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A session's body, split so that no request outgrows the batch size (a long session's events)."""
    import orjson

    events, rest = body["events"], {**body, "events": []}
    chunk: list[dict[str, Any]] = []
    size = len(orjson.dumps(rest))
    for event in events:
        n = len(orjson.dumps(event))
        if chunk and size + n > MAX_BATCH_BYTES:
            yield {**rest, "events": chunk}, size
            rest, chunk, size = {**rest, "usage": []}, [], 0
        chunk.append(event)
        size += n
    yield {**rest, "events": chunk}, size


def run(args: argparse.Namespace) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
    from aod.cli.context import socket_from_args
    from aod.cli.output import dump_json, emit, say_no_daemon, say_refused
    from aod.transcripts.importer import read_transcript, transcripts
    from aod.usage.reports import bound

    since = None
    if args.since:
        try:
            since = bound(args.since, end=False)
        except ValueError:
            print(f"aod: --since: expected a date (YYYY-MM-DD) or an RFC 3339 timestamp, got {args.since!r}",
                  file=sys.stderr)
            return EXIT_USAGE
    projects = Path(args.projects).expanduser() if args.projects else default_projects()
    if not projects.is_dir():
        print(f"aod: {projects} is no directory (Claude Code's projects; name another with --projects)",
              file=sys.stderr)
        return EXIT_USAGE
    socket_path = socket_from_args(args)
    client = DaemonClient(socket_path)
    try:
        client.get_json("/healthz")  # before reading anything: no daemon, no import
    except DaemonUnavailable:
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    files = transcripts(projects)
    progress = Progress(len(files))
    totals = {"transcripts": len(files), "sessions": 0, "matched": 0, "events": 0, "event_duplicates": 0,
              "events_rejected": 0, "usage": 0, "usage_duplicates": 0}
    seen: set[str] = set()
    matched: set[str] = set()
    now = time.time()
    done = 0

    def bodies() -> Iterator[tuple[dict[str, Any], int]]:
        nonlocal done
        for path in files:
            try:
                found = read_transcript(path, now, since)
            except OSError as exc:
                print(f"\naod: skipped {path}: {exc.strerror}", file=sys.stderr)
                found = []
            done += 1
            for session in found:
                yield from _chunks(session.body())

    try:
        for batch in _batches(bodies()):
            _, answer = client.post_json("/v1/import/claude", {"sessions": batch})
            seen.update(b["agent_session_id"] for b in batch)
            matched.update(answer["matched"])
            totals["sessions"], totals["matched"] = len(seen), len(matched)
            totals["events"] += answer["events"]["accepted"]
            totals["event_duplicates"] += answer["events"]["duplicates"]
            totals["events_rejected"] += len(answer["events"]["rejected"])
            totals["usage"] += answer["usage"]["accepted"]
            totals["usage_duplicates"] += answer["usage"]["duplicates"]
            progress.update(done, totals["sessions"])
    except DaemonUnavailable:
        progress.close()
        say_no_daemon(socket_path)
        return EXIT_UNAVAILABLE
    except DaemonError as exc:
        progress.close()
        say_refused(exc)
        return EXIT_DAEMON_ERROR
    progress.update(len(files), totals["sessions"])
    progress.close()
    if args.json:
        emit(dump_json(totals))
    else:
        emit(f"imported {totals['transcripts']} transcripts from {projects}: {totals['sessions']} sessions "
             f"({totals['matched']} already known from hooks: only their usage), "
             f"{totals['events']} new events ({totals['event_duplicates']} already there), "
             f"{totals['usage']} new usage rows ({totals['usage_duplicates']} already there)")
        if totals["events_rejected"]:
            print(f"aod: {totals['events_rejected']} events were refused (kept in dead_letters)", file=sys.stderr)
    return EXIT_OK
