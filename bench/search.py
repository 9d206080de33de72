"""Full-text search (issue 20): `GET /v1/search`'s query function at 1M events, and what the index
costs ingest.

    python bench/search.py [--db PATH] [--events N] [--rounds N] [--ingest N]

1. Query: the database is built once with the real schema (every migration, so the search
   triggers index each event as it goes in) and kept at --db: 200 projects' worth of 10,000
   sessions, N events (default 1,000,000) whose prompts, commands, paths, errors and
   notifications are drawn from a vocabulary with a long tail (Zipf-like: a few words are in
   most events, most words in few). Each query runs --rounds times after a warm-up in one read
   transaction, as `db.read` runs it (aod.storage.search.search, a page of 50 with snippets);
   p50 / p95 are printed. Target: p95 < 20 ms.
2. Ingest: the writer's CPU per event (thread time) for the ingest's insert of realistic rows
   (aod.storage.events.insert_many, in transactions of 16 and of 500), and for the search
   indexer's batches over the same events (aod.storage.search.index_next, batches of 1, 16,
   1,000 and 5,000 events per transaction: FTS5 pays per transaction).
3. End to end (--end-to-end N): bench/ingest.py's single-event load (32 connections, one event
   per request, over the Unix socket, the lean protocol) against `aod serve` on a fresh data
   dir with the indexer and on one whose indexer cursor is beyond every id (nothing to index),
   alternating, 3 runs each:
   events/s and the server's CPU µs per event (all threads, from /proc).
4. Export (--export N): a session of N events posted to `aod serve`, then exported as JSONL and
   as Markdown: size, rate, and the daemon's peak RSS before and after (constant memory: the
   export reads pages of 500).
5. The migration's backfill: `rebuild` of the index over the built database on the stdlib
   sqlite3 (the library migrations run on), events/s.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import orjson

from aod.storage import events, search
from aod.storage.connection import open_connection
from aod.storage.migrate import migrate
from aod.timefmt import iso_from_seconds

START = 1_780_000_000.0  # 2026-05-28
SESSIONS, PROJECTS = 10_000, 200
KINDS = ["PreToolUse", "PostToolUse", "UserPromptSubmit", "Notification", "PostToolUseFailure", "Stop"]
KIND_WEIGHTS = [38, 38, 8, 4, 2, 10]
TOOLS = ["Bash", "Read", "Edit", "Grep", "Write"]
# 20,000 words; word i is drawn with weight 1/(i+1) (Zipf-like): "w0" is in a large share of all
# events, "w19999" in very few.
VOCABULARY = [f"w{i}" for i in range(20_000)]
CUMULATIVE = list(itertools.accumulate(1 / (i + 1) for i in range(len(VOCABULARY))))


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=n))


def _payload(rng: random.Random, kind: str, tool: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0", "hook_event_name": kind,
        "transcript_path": "/home/alice/.claude/projects/my-project/00893aaf.jsonl", "cwd": "/home/alice/src/my-project",
    }
    if kind == "UserPromptSubmit":
        payload["prompt"] = _words(rng, rng.randint(8, 60))
    elif kind == "Notification":
        payload["message"] = "Claude needs your permission to use Bash " + _words(rng, 3)
    elif tool is not None:
        payload["tool_name"] = tool
        payload["tool_input"] = ({"command": f"pytest -q tests/{_words(rng, 1)}.py -k {_words(rng, 1)}",
                                  "description": _words(rng, 5)} if tool == "Bash"
                                 else {"file_path": f"/home/alice/src/my-project/{_words(rng, 1)}/{_words(rng, 1)}.py"})
        if kind == "PostToolUse":
            payload["tool_response"] = {"stdout": "." * 300, "stderr": "", "interrupted": False}
        if kind == "PostToolUseFailure":
            payload["error"] = f"Exit code 1\nError: {_words(rng, 6)}"
    return payload


def _row(rng: random.Random, i: int, at: float) -> list[Any]:
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    tool = rng.choice(TOOLS) if "ToolUse" in kind else None
    text = orjson.dumps(_payload(rng, kind, tool)).decode()
    stamp = iso_from_seconds(at)
    return [f"u{i}", f"s{rng.randrange(SESSIONS)}", "claude-code", kind, tool, None, stamp, stamp,
            None, None, None, text, len(text), 0]


def build(path: Path, total: int) -> None:
    migrate(path)
    conn = open_connection(path)
    rng = random.Random(20)
    with conn:
        conn.executemany("INSERT INTO projects (id, path, name, created_at) VALUES (?, ?, ?, ?)",
                         [(f"p{p}", f"/src/p{p}", f"p{p}", iso_from_seconds(START)) for p in range(PROJECTS)])
        conn.executemany("INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES (?, ?, 'claude-code', ?, ?)",
                         [(f"s{n}", f"p{n % PROJECTS}", iso_from_seconds(START), iso_from_seconds(START)) for n in range(SESSIONS)])
    t0 = time.perf_counter()
    step = 30 * 86400 / total
    for base in range(0, total, 10_000):
        rows = [_row(rng, i, START + i * step) for i in range(base, min(base + 10_000, total))]
        with conn:
            events.insert_many(conn, rows)
        while True:  # as the search indexer does, in batches of its size
            with conn:
                if not search.index_next(conn, 5000):
                    break
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {total:,} events in {time.perf_counter() - t0:.0f} s (indexed in batches of 5,000): {path}")


def _time(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(len(samples) * 0.95) - 1)]


def _in_txn(conn: apsw.Connection, flt: search.SearchFilter, cursor: str | None = None) -> tuple[list[Any], str | None]:
    conn.execute("BEGIN")
    try:
        return search.search(conn, flt, 50, cursor)
    finally:
        conn.execute("COMMIT")


def _matches(conn: apsw.Connection, query: str) -> int:
    return int(conn.execute("SELECT count(*) FROM event_search WHERE event_search MATCH ?", (query,)).fetchone()[0])


def queries(path: Path, rounds: int) -> None:
    conn = open_connection(path, query_only=True)
    last_day = iso_from_seconds(START + 29 * 86400)
    first_day = iso_from_seconds(START + 86400)
    page_two = _in_txn(conn, search.SearchFilter("w1"))[1]
    cases: list[tuple[str, search.SearchFilter, str | None]] = [
        ("common word (w1)", search.SearchFilter("w1"), None),
        ("common word, page 2", search.SearchFilter("w1"), page_two),
        ("mid word (w500)", search.SearchFilter("w500"), None),
        ("rare word (w19000)", search.SearchFilter("w19000"), None),
        ("no match (zzz)", search.SearchFilter("zzz"), None),
        ("two words (w3 w40)", search.SearchFilter("w3 w40"), None),
        ("phrase (\"w0 w1\")", search.SearchFilter('"w0 w1"'), None),
        ("prefix (w12*)", search.SearchFilter("w12*"), None),
        ("short prefix (w1*)", search.SearchFilter("w1*"), None),
        ("longer prefix (w123*)", search.SearchFilter("w123*"), None),
        ("OR (w7000 OR w7001)", search.SearchFilter("w7000 OR w7001"), None),
        ("command words (pytest w5)", search.SearchFilter("pytest w5"), None),
        ("w1, one session", search.SearchFilter("w1", session="s77"), None),
        ("w1, one project", search.SearchFilter("w1", project="p7"), None),
        ("w1, kind=UserPromptSubmit", search.SearchFilter("w1", kinds=("UserPromptSubmit",)), None),
        ("w1, kind=PostToolUseFailure", search.SearchFilter("w1", kinds=("PostToolUseFailure",)), None),
        ("w1, last day", search.SearchFilter("w1", since=last_day), None),
        ("w1, until the first day (worst)", search.SearchFilter("w1", until=first_day), None),
        ("w19000, until the first day", search.SearchFilter("w19000", until=first_day), None),
        ("w300, one session (worst)", search.SearchFilter("w300", session="s77"), None),
    ]
    print(f"{'query':32} {'matching':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for label, flt, cursor in cases:
        p50, p95 = _time(lambda flt=flt, cursor=cursor: _in_txn(conn, flt, cursor), rounds)
        print(f"{label:32} {_matches(conn, flt.query):>10,} {p50:>8.2f} {p95:>8.2f}")
    conn.close()


def ingest(count: int) -> None:
    """The writer's CPU per event: the ingest's insert (in transactions of 16 and of 500), and the
    indexer's batches (aod.storage.search.index_next) over the same events afterwards."""
    rng = random.Random(7)
    rows = [_row(rng, i, START + i) for i in range(count)]
    folder = Path(tempfile.mkdtemp(prefix="aod-bench-search-"))
    try:
        print(f"{'writer CPU (thread time)':40} {'µs/event':>9}")
        for per_txn in (16, 500):
            path = folder / f"{per_txn}.db"
            migrate(path)
            conn = open_connection(path)
            with conn:
                conn.executemany("INSERT INTO sessions (id, agent, created_at, updated_at) VALUES (?, 'claude-code', '', '')",
                                 [(f"s{n}",) for n in range(SESSIONS)])
            t = time.thread_time()
            for start in range(0, len(rows), per_txn):
                with conn:
                    events.insert_many(conn, rows[start:start + per_txn])
            print(f"{f'ingest insert, {per_txn} per transaction':40} {(time.thread_time() - t) / len(rows) * 1e6:>9.1f}")
            conn.close()
        for batch in (1, 16, 1000, 5000):
            path = folder / f"{per_txn}.db"
            conn = open_connection(path)
            with conn:
                conn.execute("INSERT INTO event_search (event_search) VALUES ('delete-all')")
                conn.execute("UPDATE meta SET value = '0' WHERE key = ?", (search.CURSOR_KEY,))
            t = time.thread_time()
            while True:
                with conn:
                    if not search.index_next(conn, batch):
                        break
            print(f"{f'indexer, batches of {batch}':40} {(time.thread_time() - t) / len(rows) * 1e6:>9.1f}")
            conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def end_to_end(requests: int, runs: int = 3) -> None:
    import asyncio

    import ingest as bench_ingest  # bench/ingest.py: this directory is on sys.path when run as a script

    print(f"{'end to end (lean, 1 event/request)':36} {'events/s':>9} {'CPU µs/event':>13} {'loop thread':>12} {'ack p99 ms':>11}")
    folder = Path(tempfile.mkdtemp(prefix="aod-bench-search-"))
    try:
        for run in range(runs):
            for indexed in (True, False):
                data = folder / f"{run}-{indexed}" / "data"
                data.mkdir(parents=True, mode=0o700)
                migrate(data / "aod.db")
                if not indexed:  # the indexer's cursor beyond every id: it finds nothing to index
                    conn = sqlite3.connect(data / "aod.db", isolation_level=None)
                    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(2**62), search.CURSOR_KEY))
                    conn.close()
                warmup = [bench_ingest.envelope(1_000_000 + i) for i in range(bench_ingest.WARMUP)]
                bodies = [bench_ingest.envelope(i) for i in range(requests)]
                proc, sock = bench_ingest.start_aod(data)
                try:
                    asyncio.run(bench_ingest.load(sock, warmup))
                    rate, latencies, cpu, loop_cpu = bench_ingest.measured(proc, sock, bodies)
                finally:
                    bench_ingest.stop(proc)
                label = f"run {run + 1} {'with index' if indexed else 'without index'}"
                p99 = bench_ingest.pct(latencies, 0.99)
                print(f"{label:36} {rate:>9,.0f} {cpu:>13.0f} {loop_cpu:>12.0f} {p99:>11.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export_memory(count: int) -> None:
    """A session of `count` events exported as JSONL and Markdown through `aod serve`: the daemon's
    peak RSS (VmHWM) before and after, and the rate."""
    import asyncio

    import aiohttp
    import ingest as bench_ingest

    def peak_kib(pid: int) -> int:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    async def post_all(sock: Path) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as client:
            rng = random.Random(3)
            for start in range(0, count, 500):
                items = [{"agent": "claude-code", "session": "big-1", "occurred_at": iso_from_seconds(START + i),
                          "payload": _payload(rng, rng.choices(KINDS, KIND_WEIGHTS)[0], "Bash")}
                         for i in range(start, min(start + 500, count))]
                async with client.post("http://localhost/v1/events", json={"events": items}) as resp:
                    assert resp.status == 202, await resp.text()

    async def export(sock: Path, fmt: str) -> tuple[int, float]:
        t, size = time.perf_counter(), 0
        timeout = aiohttp.ClientTimeout(total=600)
        async with (aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)), timeout=timeout) as client,
                    client.get(f"http://localhost/v1/sessions/big-1/export?format={fmt}") as resp):
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
        return size, time.perf_counter() - t

    folder = Path(tempfile.mkdtemp(prefix="aod-bench-search-"))
    try:
        data = folder / "data"
        data.mkdir(mode=0o700)
        proc, sock = bench_ingest.start_aod(data)
        try:
            asyncio.run(post_all(sock))
            before = peak_kib(proc.pid)
            for fmt in ("jsonl", "md"):
                size, took = asyncio.run(export(sock, fmt))
                print(f"export {count:,} events as {fmt}: {size / 1e6:.1f} MB in {took:.1f} s "
                      f"({count / took:,.0f} events/s); daemon peak RSS {before / 1024:.0f} -> {peak_kib(proc.pid) / 1024:.0f} MiB")
        finally:
            bench_ingest.stop(proc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def backfill(path: Path) -> None:
    copy = Path(tempfile.mkdtemp(prefix="aod-bench-search-")) / "aod.db"
    try:
        shutil.copyfile(path, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.execute("INSERT INTO event_search (event_search) VALUES ('delete-all')")
        t = time.perf_counter()
        conn.execute("INSERT INTO event_search (event_search) VALUES ('rebuild')")
        took = time.perf_counter() - t
        conn.close()
        print(f"backfill (rebuild, stdlib sqlite3 {sqlite3.sqlite_version}): {total:,} events in {took:.1f} s, "
              f"{total / took:,.0f} events/s")
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/aod-bench-search/aod.db"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--ingest", type=int, default=20_000, help="events per ingest measurement")
    ap.add_argument("--no-backfill", action="store_true", help="skip the rebuild measurement")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="N", help="also N single-event requests to aod serve, "
                    "with and without the index")
    ap.add_argument("--export", type=int, default=0, metavar="N", help="also export a session of N events through aod serve")
    args = ap.parse_args()
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        build(args.db, args.events)
    queries(args.db, args.rounds)
    ingest(args.ingest)
    if not args.no_backfill:
        backfill(args.db)
    if args.end_to_end:
        end_to_end(args.end_to_end)
    if args.export:
        export_memory(args.export)


if __name__ == "__main__":
    main()
