"""`GET /v1/stats` at 1M events: the route's query function on a reader connection, against a plain
`SELECT count(*)` over the same window measured in the same run.

    python bench/stats.py [--db PATH] [--events N] [--rounds N]

The database is built once with the real schema (the migrations, so every index and trigger) and
kept at --db for the next run: 20 projects, 10,000 sessions, N events (default 1,000,000) spread
over the 30 days before END, with a busy last hour of 40,000 of them (11 events/s). Each window
is asked --rounds times after one warm-up; p50 and p95 are printed. Target (issue 13): < 50 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import apsw
import orjson

from aod.storage import stats
from aod.storage.connection import open_connection
from aod.storage.migrate import migrate
from aod.timefmt import iso_from_seconds, parse_iso

END = parse_iso("2026-11-29T08:00:00Z")
DAYS = 30
BUSY_HOUR = 40_000
PROJECTS, SESSIONS = 20, 10_000
TOOLS = ["Bash", "Read", "Edit", "Grep", "Glob", "Write", "Task", "WebFetch", "TodoWrite", "mcp__github__get_pr"]
TOOL_WEIGHTS = [30, 25, 15, 10, 6, 5, 3, 2, 3, 1]
INSERT = (
    "INSERT INTO events (uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at, received_at,"
    " duration_ms, ok, payload, payload_bytes) VALUES (?, ?, 'claude-code', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _payload(kind: str, tool: str | None) -> str:
    return orjson.dumps({
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0", "hook_event_name": kind, "tool_name": tool,
        "transcript_path": "/home/alice/.claude/projects/my-project/00893aaf.jsonl", "cwd": "/home/alice/src/my-project",
        "tool_input": {"command": "pytest -q tests/", "description": "Run the tests"},
        "tool_response": {"stdout": "." * 300, "stderr": "", "interrupted": False},
    }).decode()


def _event(rng: random.Random, i: int, at: float) -> tuple[Any, ...]:
    roll = rng.random()
    kind = "PreToolUse" if roll < 0.4 else "PostToolUse" if roll < 0.8 else rng.choice(["UserPromptSubmit", "Stop", "Notification"])
    tool = rng.choices(TOOLS, TOOL_WEIGHTS)[0] if kind.endswith("ToolUse") else None
    duration = int(rng.lognormvariate(5, 1.5)) if kind == "PostToolUse" else None
    ok = (0 if rng.random() < 0.05 else 1) if kind == "PostToolUse" else None
    stamp = iso_from_seconds(at)
    payload = _payload(kind, tool)
    return (f"u{i}", f"p{rng.randrange(PROJECTS)}-{rng.randrange(SESSIONS // PROJECTS)}", kind, tool,
            f"toolu_{i}" if tool else None, stamp, stamp, duration, ok, payload, len(payload))


def build(path: Path, total: int) -> None:
    migrate(path)
    conn = open_connection(path)
    rng = random.Random(13)
    start = END - timedelta(days=DAYS)
    t0 = time.perf_counter()
    with conn:
        for p in range(PROJECTS):
            conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES (?, ?, ?, ?)",
                         (f"p{p}", f"/src/p{p}", f"p{p}", iso_from_seconds(start.timestamp())))
        statuses = ["working", "idle", "needs_input", "stuck", "done", "killed", "runtime_lost"]
        conn.executemany(
            "INSERT INTO sessions (id, project_id, agent, status, created_at, updated_at, ended_at)"
            " VALUES (?, ?, 'claude-code', ?, ?, ?, ?)",
            [(f"p{p}-{n}", f"p{p}", status := rng.choice(statuses), iso_from_seconds(start.timestamp()),
              iso_from_seconds(END.timestamp()), iso_from_seconds(END.timestamp() - rng.uniform(0, 86400 * DAYS))
              if status in ("done", "killed", "runtime_lost") else None)
             for p in range(PROJECTS) for n in range(SESSIONS // PROJECTS)],
        )
    quiet, busy_from = total - BUSY_HOUR, END.timestamp() - 3600
    times = sorted([rng.uniform(start.timestamp(), busy_from) for _ in range(quiet)]
                   + [rng.uniform(busy_from, END.timestamp()) for _ in range(BUSY_HOUR)])
    for base in range(0, total, 10_000):
        with conn:
            conn.executemany(INSERT, [_event(rng, i, times[i]) for i in range(base, min(base + 10_000, total))])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {total:,} events in {time.perf_counter() - t0:.0f} s: {path}")


def _time(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(len(samples) * 0.95) - 1)]


def _window(hours: float, **kw: str) -> stats.StatsFilter:
    since = END - timedelta(hours=hours)
    return stats.StatsFilter(since=iso_from_seconds(since.timestamp()), until=iso_from_seconds(END.timestamp()), **kw)


def run(path: Path, rounds: int) -> None:
    conn = open_connection(path)
    windows = [
        ("last hour (the dashboard's)", _window(1)),
        ("last hour, one project", _window(1, project="p3")),
        ("last hour, one session", _window(1, session="p3-7")),
        ("last 24 h", _window(24)),
        ("7 days (the widest the route takes)", _window(24 * 7)),
        ("worst: all 30 days", _window(24 * DAYS)),
    ]
    print(f"{'window':36} {'events':>9} {'count(*) p50/p95 ms':>20} {'stats p50/p95 ms':>18}")
    for label, flt in windows:
        n = _baseline(conn, flt)
        base = _time(lambda flt=flt: _baseline(conn, flt), rounds)
        full = _time(lambda flt=flt: _in_txn(conn, flt), rounds)
        print(f"{label:36} {n:>9,} {base[0]:>9.1f} / {base[1]:<8.1f} {full[0]:>8.1f} / {full[1]:<8.1f}")
    conn.close()


def _baseline(conn: apsw.Connection, flt: stats.StatsFilter) -> int:
    where, args = stats.event_scope(flt)
    return conn.execute(f"SELECT count(*) FROM events WHERE {where}", args).fetchone()[0]


def _in_txn(conn: apsw.Connection, flt: stats.StatsFilter) -> dict[str, Any]:
    """As `db.read` runs it: one read transaction."""
    conn.execute("BEGIN")
    try:
        return stats.stats(conn, flt)
    finally:
        conn.execute("COMMIT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/aod-bench-stats/aod.db"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        build(args.db, args.events)
    run(args.db, args.rounds)


if __name__ == "__main__":
    main()
