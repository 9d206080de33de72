"""Reaper tick cost: aod's batched probes against probing each session on its own, in one run.

    python bench/reaper.py [--sessions 100,1000] [--rounds 3]

N live sessions in a freshly migrated file, half in tmux panes (10 real panes on a private tmux
server, shared round-robin), half plain processes (live pids with their start time recorded).
1. aod, quiet tick: `Reaper.tick()` when every probe confirms what the file says (the common
   case: reads and probes, no write).
2. aod, every session changes: the same with `is_alive` cleared first, so the tick writes N rows
   (one transaction, status re-derived for each).
Baseline: what a per-session reaper pays just to probe (no database): one `tmux display-message`
per tmux session and one `ps -o lstart=` per process session, 8 at a time.
Medians of the rounds; per-session cost in parentheses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import apsw

from aod.config import StorageConfig
from aod.runtime import process
from aod.sessions.facts import FactWriter
from aod.sessions.reaper import Reaper, ReaperSettings
from aod.storage.database import Storage, open_storage
from aod.timefmt import now_iso

PANES = 10
CHILDREN = 10
SETTINGS = ReaperSettings(interval=5.0, grace=60.0, probe_timeout=10.0)


async def seed(storage: Storage, n: int, panes: list[str], pids: list[int]) -> None:
    starts = await process.read_starts(pids, timeout=5)
    now = now_iso()

    def write(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('bench', '/bench', 'bench', ?)", (now,))
        for i in range(n):
            if i % 2:
                pid = pids[i % len(pids)]
                start = starts[pid]
                assert start is not None
                runtime, handle = "process", process.format_handle(pid, start.token)
            else:
                pid, runtime, handle = None, "tmux", panes[i % len(panes)]
            conn.execute(
                "INSERT INTO sessions (id, project_id, agent, status, activity, is_alive, runtime, runtime_handle,"
                " pid, created_at, updated_at, last_event_at) VALUES (?, 'bench', 'claude-code', 'idle', 'idle', 1,"
                " ?, ?, ?, ?, ?, ?)",
                (f"bench-{i}", runtime, handle, pid, now, now, now),
            )

    await storage.db.write(write)


async def naive_probes(panes: list[str], pids: list[int], n: int) -> None:
    gate = asyncio.Semaphore(8)

    async def one(*argv: str) -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            await proc.communicate()

    jobs = []
    for i in range(n):
        if i % 2:
            jobs.append(one("ps", "-o", "lstart=", "-p", str(pids[i % len(pids)])))
        else:
            jobs.append(one("tmux", "display-message", "-p", "-t", panes[i % len(panes)], "#{pane_dead} #{pane_pid}"))
    await asyncio.gather(*jobs)


async def measure(n: int, rounds: int, panes: list[str], pids: list[int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aod-bench-reaper-") as tmp:
        storage = await open_storage(Path(tmp), StorageConfig())
        try:
            await seed(storage, n, panes, pids)
            reaper = Reaper(storage.db, lambda: SETTINGS, FactWriter(lambda: 600.0))
            times: dict[str, list[float]] = {"quiet": [], "changes": [], "naive": []}
            for _ in range(rounds):
                started = time.perf_counter()
                report = await reaper.tick()
                times["quiet"].append(time.perf_counter() - started)
                assert len(report.probed) == n and set(report.probed.values()) == {"alive"}, report.probed

                await storage.db.write(lambda c: c.execute("UPDATE sessions SET is_alive = NULL"))
                started = time.perf_counter()
                await reaper.tick()
                times["changes"].append(time.perf_counter() - started)

                started = time.perf_counter()
                await naive_probes(panes, pids, n)
                times["naive"].append(time.perf_counter() - started)
            alive = await storage.db.read(lambda c: c.execute("SELECT count(*) FROM sessions WHERE is_alive = 1").fetchone()[0])
            assert alive == n, alive
        finally:
            await storage.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("bench/reaper.py needs tmux")
    tmux_dir = tempfile.mkdtemp(prefix="aodb", dir="/tmp")
    os.environ["TMUX_TMPDIR"] = tmux_dir
    os.environ.pop("TMUX", None)
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(CHILDREN)]
    try:
        panes = []
        for i in range(PANES):
            out = subprocess.run(["tmux", "new-session", "-d", "-s", f"b{i}", "-P", "-F", "#{pane_id}", "sleep", "600"],
                                 capture_output=True, text=True, check=True).stdout
            panes.append(out.strip())
        pids = [c.pid for c in children]
        print(f"{'sessions':>8}  {'aod quiet tick':>22}  {'aod tick, N writes':>22}  {'baseline: probe each':>22}  ratio")
        for n in (int(x) for x in args.sessions.split(",")):
            m = asyncio.run(measure(n, args.rounds, panes, pids))
            cell = [f"{m[k] * 1000:8.1f} ms ({m[k] / n * 1e6:5.0f} µs)" for k in ("quiet", "changes", "naive")]
            print(f"{n:>8}  {cell[0]:>22}  {cell[1]:>22}  {cell[2]:>22}  {m['naive'] / m['quiet']:5.1f}x")
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True)
        shutil.rmtree(tmux_dir, ignore_errors=True)
        for c in children:
            c.kill()
            c.wait()


if __name__ == "__main__":
    main()
