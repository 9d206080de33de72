"""Storage write throughput: raw apsw against aod's group-commit writer, in one run.

    python bench/storage.py [--rows N] [--synchronous normal|full]

Every variant inserts the same ~1 KB event rows into a freshly migrated file (same schema,
indexes and change_log trigger), so the ratios measure what the storage layer costs. The
variants run interleaved for several rounds and the medians are compared, because the disk of
a shared machine swings by a third from one minute to the next.
Targets (issue 2): batched path >= 0.6x raw; 32 concurrent single-event writers >= 15,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import apsw
import orjson

from aod.config import StorageConfig
from aod.storage.connection import open_connection
from aod.storage.database import open_storage
from aod.storage.migrate import migrate

T0 = "2026-11-22T10:00:00.000000Z"
INSERT = (
    "INSERT INTO events (uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at, received_at,"
    " payload, payload_bytes) VALUES (?, 'bench-1', 'claude-code', 'PostToolUse', 'Bash', ?, ?, ?, ?, ?)"
)
PAYLOAD = orjson.dumps(
    {
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0",
        "transcript_path": "/home/alice/.claude/projects/my-project/00893aaf.jsonl",
        "cwd": "/home/alice/src/my-project",
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "pytest -q tests/", "description": "Run the tests"},
        "tool_response": {"stdout": "." * 700, "stderr": "", "interrupted": False},
    }
).decode()
BATCH = 1000
WRITERS = 32


def _seed(conn: apsw.Connection) -> None:
    conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('bench', '/bench', 'bench', ?)", (T0,))
    conn.execute(
        "INSERT INTO sessions (id, project_id, agent, created_at, updated_at)"
        " VALUES ('bench-1', 'bench', 'claude-code', ?, ?)",
        (T0, T0),
    )


def _rows(prefix: str, start: int, count: int) -> list[tuple[object, ...]]:
    return [(f"{prefix}{i}", f"toolu_{i}", T0, T0, PAYLOAD, len(PAYLOAD)) for i in range(start, start + count)]


def _fresh_db(root: Path, name: str) -> Path:
    path = root / name / "aod.db"
    migrate(path)
    return path


def bench_raw(root: Path, rows: int, synchronous: str) -> float:
    conn = open_connection(_fresh_db(root, "raw"), synchronous=synchronous)
    with conn:
        _seed(conn)
    start = time.perf_counter()
    for base in range(0, rows, BATCH):
        with conn:
            conn.executemany(INSERT, _rows("r", base, BATCH))
    elapsed = time.perf_counter() - start
    conn.close()
    return rows / elapsed


async def _with_storage(root: Path, name: str, synchronous: str, work) -> float:
    data_dir = _fresh_db(root, name).parent
    storage = await open_storage(data_dir, StorageConfig(synchronous=synchronous))
    try:
        await storage.db.write(_seed)
        start = time.perf_counter()
        count = await work(storage.db)
        return count / (time.perf_counter() - start)
    finally:
        await storage.close()


async def bench_batched(root: Path, rows: int, synchronous: str) -> float:
    async def work(db) -> int:
        # A few bulk requests in flight at once, as concurrent bulk ingest requests would be.
        async def submitter(k: int, bases: range) -> None:
            for base in bases:
                await db.write(lambda c, b=base: c.executemany(INSERT, _rows("b", b, BATCH)))

        bases = range(0, rows, BATCH)
        await asyncio.gather(*(submitter(k, bases[k::4]) for k in range(4)))
        return rows

    return await _with_storage(root, "batched", synchronous, work)


async def bench_concurrent(root: Path, rows: int, synchronous: str) -> tuple[float, float]:
    per_writer = rows // WRITERS
    transactions = 0

    async def work(db) -> int:
        nonlocal transactions
        before = db.writer_stats.transactions

        async def writer(w: int) -> None:
            for i in range(per_writer):
                row = _rows(f"c{w}-", i, 1)[0]
                await db.write(lambda c, r=row: c.execute(INSERT, r))

        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        transactions = db.writer_stats.transactions - before
        return per_writer * WRITERS

    rate = await _with_storage(root, "concurrent", synchronous, work)
    return rate, per_writer * WRITERS / max(transactions, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = args.rows - args.rows % BATCH

    raws, batcheds, concurrents, per_txs = [], [], [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="aod-bench-") as tmp:
            root = Path(tmp)
            raws.append(bench_raw(root, rows, args.synchronous))
            batcheds.append(asyncio.run(bench_batched(root, rows, args.synchronous)))
            rate, per_tx = asyncio.run(bench_concurrent(root, rows, args.synchronous))
            concurrents.append(rate)
            per_txs.append(per_tx)
    raw, batched = statistics.median(raws), statistics.median(batcheds)
    concurrent, per_tx = statistics.median(concurrents), statistics.median(per_txs)

    print(f"storage write bench: {rows} rows of {len(PAYLOAD)} B payload, synchronous={args.synchronous}, "
          f"SQLite {apsw.sqlite_lib_version()}, median of {args.rounds} interleaved rounds")
    print(f"  raw apsw, {BATCH} rows/tx (baseline)      {raw:>10,.0f} rows/s")
    print(f"  aod write(), {BATCH} rows/request            {batched:>10,.0f} rows/s   ratio {batched / raw:.2f}  "
          f"(target >= 0.60)  {'PASS' if batched / raw >= 0.6 else 'FAIL'}")
    print(f"  aod write(), {WRITERS} concurrent 1-row writers  {concurrent:>10,.0f} writes/s ratio {concurrent / raw:.2f}  "
          f"(target >= 15,000/s) {'PASS' if concurrent >= 15_000 else 'FAIL'}  ~{per_tx:.0f} writes/tx")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
