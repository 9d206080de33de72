"""Forwarding to a team PostgreSQL (issue 18): rows/s forwarded against a plain COPY of the same
rows, and the forward lag of a real daemon taking 1,000 events/s.

    .venv/bin/python bench/forward.py [--events 50000] [--rate 1000] [--seconds 20]

Starts a private PostgreSQL cluster (tests/helpers/postgres.py: Debian's initdb and pg_ctl, run as
`postgres` when this runs as root). Part 1 fills a fresh aod database (events of ~1.3 KB payload
over 50 sessions, written through the real triggers), then times the forwarder draining it with
the default batch size and with 5,000, against one COPY of the same event rows into a plain copy
of aod.events. Part 2 runs `aod serve` forwarding to the cluster while an open-loop client posts
`--rate` events/s (batches of 10 every 10 ms) and samples /v1/status's forward lag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aod.config import PostgresForwardConfig  # noqa: E402
from aod.forward.job import Forwarder  # noqa: E402
from aod.forward.team_store import target_of  # noqa: E402
from aod.storage import forward  # noqa: E402
from aod.storage.database import Database, open_storage  # noqa: E402
from aod.timefmt import now_iso  # noqa: E402
from aod.uids import uid7  # noqa: E402
from tests.helpers.postgres import Postgres, new_team_database, remove_cluster, start_cluster  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "claude-code" / "PostToolUse.bash.json"


def payload(i: int) -> dict[str, Any]:
    base: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    base["tool_use_id"] = f"toolu_{i}"
    base["tool_response"]["stdout"] = "." * 500
    return base


async def fill(db: Database, n: int) -> None:
    now = now_iso()

    def sessions(conn: Any) -> None:
        conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('bench', '/src/bench', 'bench', ?)",
                     (now,))
        for s in range(50):
            conn.execute("INSERT INTO sessions (id, project_id, agent, created_at, updated_at)"
                         " VALUES (?, 'bench', 'claude-code', ?, ?)", (f"bench-{s}", now, now))

    await db.write(sessions)
    chunk = 5000
    for start in range(0, n, chunk):
        rows = [(uid7(), f"bench-{i % 50}", now, now, text, len(text))
                for i in range(start, min(n, start + chunk)) for text in [orjson.dumps(payload(i)).decode()]]

        def insert(conn: Any, rows: list[tuple[Any, ...]] = rows) -> None:
            conn.executemany("INSERT INTO events (uid, session_id, agent, kind, tool_name, occurred_at, received_at,"
                             " ok, payload, payload_bytes) VALUES (?, ?, 'claude-code', 'PostToolUse', 'Bash', ?, ?,"
                             " 1, ?, ?)", rows)

        await db.write(insert)


async def drain(db: Database, dsn: str, batch_size: int) -> tuple[float, int, int]:
    """Seconds to forward everything from a cursor at 0 through change_log (not the backfill a new
    team store also gets, which would send every event twice), connecting included; change_log rows
    and team rows shipped. `dsn` is a database with the team schema and nothing in it."""
    target = target_of(dsn)
    await db.write(lambda c: (c.execute("DELETE FROM forward_cursor"), c.execute(
        "INSERT INTO forward_cursor (target, seq) VALUES (?, 0)", (target,))))
    options = PostgresForwardConfig(dsn=dsn, batch_size=batch_size)
    fwd = Forwarder(db, lambda: options)
    started = time.perf_counter()
    while await fwd.step() is not None:
        pass
    elapsed = time.perf_counter() - started
    await fwd.close()
    if fwd.last_error:
        raise SystemExit(fwd.last_error)
    return elapsed, fwd.forwarded, fwd.upserted


async def plain_copy(db: Database, dsn: str) -> tuple[float, int]:
    columns = forward.COLUMNS["events"]
    rows = await db.read(lambda c: c.execute(f"SELECT {', '.join(columns)} FROM events").fetchall())
    rows = [tuple(bool(v) if col in forward.FLAGS and v is not None else v for col, v in zip(columns, r, strict=True))
            for r in rows]
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_events")
        conn.execute("CREATE TABLE plain_events (LIKE aod.events INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                f"COPY plain_events (machine_id, {', '.join(columns)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(("m", *r))
        elapsed = time.perf_counter() - started
    return elapsed, len(rows)


async def part1(pg: Postgres, n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="aod-bench-forward-"))
    try:
        storage = await open_storage(work / "data")
        db = storage.db
        try:
            t = time.perf_counter()
            await fill(db, n)
            print(f"filled {n} events in {time.perf_counter() - t:.1f}s")
            for batch in (1000, 5000):
                dsn = new_team_database(pg)
                secs, changes, upserted = await drain(db, dsn, batch)
                print(f"forwarder, batch_size {batch}: {changes} change_log rows ({upserted} team rows) in"
                      f" {secs:.2f}s = {changes / secs:,.0f} rows/s")
            secs, rows = await plain_copy(db, dsn)
            print(f"plain COPY of the same {rows} event rows: {secs:.2f}s = {rows / secs:,.0f} rows/s")
        finally:
            await storage.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def status(session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get("http://localhost/v1/status") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def part2(pg: Postgres, rate: int, seconds: float, forwarding: bool) -> None:
    """With `forwarding` off: the same load on a daemon that forwards nothing (the ingest baseline)."""
    work = Path(tempfile.mkdtemp(prefix="aod-bench-forward-"))
    dsn = new_team_database(pg)
    data_dir, socket_path = work / "data", work / "aod.sock"
    config = work / "config.toml"
    config.write_text('[server]\ntcp = ""\nlog_level = "warning"\n'
                      + (f'[forward.postgres]\ndsn = "{dsn}"\n' if forwarding else ""))
    env = os.environ | {"AOD_DATA_DIR": str(data_dir), "AOD_SOCKET": str(socket_path), "AOD_CONFIG": str(config)}
    aod = shutil.which("aod", path=str(Path(sys.executable).parent)) or "aod"
    proc = subprocess.Popen([aod, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        connector = aiohttp.UnixConnector(path=str(socket_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(200):
                try:
                    await status(session)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            per_batch, tick = 10, 10 / rate
            headers = {"Content-Type": "application/json"}
            samples: list[tuple[float, int]] = []
            latencies: list[float] = []
            sent = 0

            async def post(body: bytes) -> None:
                started = time.perf_counter()
                async with session.post("http://localhost/v1/events", data=body, headers=headers) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - started)

            async def sample() -> None:
                while True:
                    f = (await status(session))["forward"]
                    samples.append((f["lag_seconds"], f["lag_rows"]))
                    await asyncio.sleep(0.25)

            sampler = asyncio.create_task(sample())
            posts = []
            begin = time.perf_counter()
            while time.perf_counter() - begin < seconds:
                body = orjson.dumps({"events": [{"uid": uid7(), "agent": "claude-code", "payload": payload(sent + i)}
                                                for i in range(per_batch)]})
                posts.append(asyncio.create_task(post(body)))
                sent += per_batch
                next_at = begin + (sent / per_batch) * tick
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            await asyncio.gather(*posts)
            achieved = sent / (time.perf_counter() - begin)
            caught = time.perf_counter()
            while (await status(session))["forward"]["lag_rows"]:
                await asyncio.sleep(0.05)
            tail = time.perf_counter() - caught
            sampler.cancel()
        lags = sorted(s[0] for s in samples)
        rows = sorted(s[1] for s in samples)
        lat = sorted(latencies)
        if not forwarding:
            print(f"no forwarding, {sent} events at {achieved:,.0f}/s: ingest ack latency p50"
                  f" {lat[len(lat) // 2] * 1000:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.2f} ms")
            return
        print(f"{sent} events at {achieved:,.0f}/s for {seconds:.0f}s: forward lag seconds p50 {statistics.median(lags):.3f}"
              f" p95 {lags[int(len(lags) * 0.95)]:.3f} max {lags[-1]:.3f}; lag rows p50 {statistics.median(rows):.0f}"
              f" max {rows[-1]}; caught up {tail:.2f}s after the last post")
        print(f"ingest ack latency meanwhile: p50 {lat[len(lat) // 2] * 1000:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.2f} ms")
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM aod.events").fetchone()
        print(f"team store holds {stored[0] if stored else 0} of {sent} events")
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    pg = start_cluster()
    try:
        asyncio.run(part1(pg, args.events))
        for forwarding in (False, True, False, True):  # alternating: the machine's noise hits both alike
            asyncio.run(part2(pg, args.rate, args.seconds, forwarding))
    finally:
        remove_cluster(pg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
