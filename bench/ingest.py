"""Ingest over the Unix socket: aod serve against a bare aiohttp handler, in one run.

    python bench/ingest.py [--requests N]

1. 32 concurrent connections, one ~1 KB event per request: a bare aiohttp server that parses
   JSON and answers 202 (baseline) vs `aod serve` POST /v1/events (served by aod/api/lean.py).
   Events/s, ratio (target >= 1.0), server CPU per event from /proc (target <= 1.0x the bare
   handler's per request), ack latency p50/p99 (target p99 < 10 ms); then p99 at a steady
   200 events/s (target < 2 ms).
2. Bulk requests of 500 events to aod vs raw batched apsw inserts of the same rows (>= 0.6).
3. `aod hook` (as installed: python -S hook.py) vs `python3 -S -c` posting the same bytes over
   the same socket (target <= 1.3x), and the spool path with the daemon down.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from aod.uids import uid7

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "claude-code" / "PostToolUse.bash.json"
CONCURRENCY = 32
WARMUP = 5000
BULK = 500
STEADY_RATE = 200  # events/s, one per request, for 5 s

BARE_SERVER = """
import sys, orjson
from aiohttp import web
async def handle(request):
    orjson.loads(await request.read())
    return web.Response(body=b'{"accepted":1,"duplicates":0,"rejected":[]}', status=202, content_type="application/json")
app = web.Application(client_max_size=16 * 2**20)
app.router.add_post("/v1/events", handle)
web.run_app(app, path=sys.argv[1], print=None, access_log=None)
"""

RAW_POST = """
import socket, sys
body = sys.stdin.buffer.read()
s = socket.socket(socket.AF_UNIX); s.settimeout(0.3); s.connect(sys.argv[1])
s.sendall(b"POST /v1/events HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\nContent-Length: "
          + str(len(body)).encode() + b"\\r\\nConnection: close\\r\\n\\r\\n" + body)
s.recv(65536)
"""


def payload(i: int) -> dict:
    base = orjson.loads(FIXTURE.read_bytes())
    base["tool_use_id"] = f"toolu_{i}"
    base["tool_response"]["stdout"] = "." * 500
    return base


def envelope(i: int) -> bytes:
    # uids as aod's hook client makes them (UUIDv7, time-ordered).
    return orjson.dumps({"uid": uid7(), "agent": "claude-code", "payload": payload(i)})


def wait_for_socket(path: Path, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if path.exists():
            return
        time.sleep(0.02)
    raise SystemExit(f"no socket at {path}")


def start_aod(data_dir: Path) -> tuple[subprocess.Popen, Path]:
    socket_path = data_dir / "aod.sock"
    config = data_dir.parent / "bench.toml"
    config.write_text('[server]\ntcp = ""\nlog_level = "warning"\n')
    env = os.environ | {"AOD_DATA_DIR": str(data_dir), "AOD_SOCKET": str(socket_path), "AOD_CONFIG": str(config)}
    aod = shutil.which("aod", path=str(Path(sys.executable).parent)) or "aod"
    proc = subprocess.Popen([aod, "serve"], env=env, stderr=subprocess.DEVNULL)
    wait_for_socket(socket_path, proc)
    time.sleep(0.3)  # readiness: the spool drain
    return proc, socket_path


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU of a process (Linux /proc): its main thread (the event loop), and all its threads."""
    def read(stat: Path) -> float:
        fields = stat.read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return read(Path(f"/proc/{pid}/task/{pid}/stat")), read(Path(f"/proc/{pid}/stat"))


def measured(proc: subprocess.Popen, sock: Path, bodies: list[bytes]) -> tuple[float, list[float], float, float]:
    """Events/s, latencies, the server's CPU µs per event, and the part of it on its main thread."""
    main_before, before = cpu_seconds(proc.pid)
    rate, latencies = asyncio.run(load(sock, bodies))
    main_after, after = cpu_seconds(proc.pid)
    return rate, latencies, (after - before) / len(bodies) * 1e6, (main_after - main_before) / len(bodies) * 1e6


def writer_batches(sock: Path) -> tuple[float, float]:
    """aod's group commits so far: (transactions, write requests in them), from /metrics."""
    async def get() -> str:
        async with (aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as session,
                    session.get("http://localhost/metrics") as resp):
            return await resp.text()

    found = dict(re.findall(r"^aod_writer_batch_size_(count|sum) (\S+)$", asyncio.run(get()), re.M))
    return float(found["count"]), float(found["sum"])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


async def timed_post(session: aiohttp.ClientSession, body: bytes) -> float:
    """Seconds from sending one POST /v1/events to its 202 read in full."""
    started = time.perf_counter()
    async with session.post("http://localhost/v1/events", data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status != 202:
            raise SystemExit(f"unexpected {resp.status}")
    return time.perf_counter() - started


async def load(socket_path: Path, bodies: list[bytes]) -> tuple[float, list[float]]:
    connector = aiohttp.UnixConnector(path=str(socket_path), limit=CONCURRENCY)
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while not queue.empty():
                latencies.append(await timed_post(session, queue.get_nowait()))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return len(bodies) / elapsed, latencies


async def paced(socket_path: Path, bodies: list[bytes], rate: float) -> list[float]:
    """Ack latencies of requests sent at a steady `rate` (open loop: a slow answer does not delay the next)."""
    connector = aiohttp.UnixConnector(path=str(socket_path), limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        start, sent = time.perf_counter(), []
        for i, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent.append(asyncio.create_task(timed_post(session, body)))
        return list(await asyncio.gather(*sent))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bench_single(root: Path, requests: int) -> dict[str, float]:
    bodies = [envelope(i) for i in range(requests)]
    # Distinct from the measured bodies: a repeat within ingest.dedup_window is a duplicate
    # that aod answers without writing, which would flatter it.
    warmup = [envelope(1_000_000 + i) for i in range(WARMUP)]
    bare_sock = root / "bare.sock"
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_sock)])
    wait_for_socket(bare_sock, bare)
    try:
        asyncio.run(load(bare_sock, warmup))
        bare_rate, bare_lat, bare_cpu, _ = measured(bare, bare_sock, bodies)
    finally:
        stop(bare)
    (root / "single").mkdir()
    proc, sock = start_aod(root / "single")
    try:
        # The first minutes of a new data dir grow the WAL and database files from nothing;
        # measured separately, since a daemon runs for days in the steady state after it.
        cold_rate, _ = asyncio.run(load(sock, warmup))
        tx_before, writes_before = writer_batches(sock)
        aod_rate, aod_lat, aod_cpu, aod_main_cpu = measured(proc, sock, bodies)
        tx_after, writes_after = writer_batches(sock)
        steady = asyncio.run(paced(sock, [envelope(2_000_000 + i) for i in range(STEADY_RATE * 5)], STEADY_RATE))
    finally:
        stop(proc)
    return {"bare": bare_rate, "aod": aod_rate, "aod_cold": cold_rate, "bare_cpu": bare_cpu, "aod_cpu": aod_cpu,
            "aod_main_cpu": aod_main_cpu, "batch": (writes_after - writes_before) / max(1.0, tx_after - tx_before),
            "bare_p50": pct(bare_lat, 0.5),
            "bare_p99": pct(bare_lat, 0.99), "aod_p50": pct(aod_lat, 0.5), "aod_p99": pct(aod_lat, 0.99),
            "steady_p50": pct(steady, 0.5), "steady_p99": pct(steady, 0.99)}


def bench_bulk(root: Path, batches: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from aod.storage.connection import open_connection
    from aod.storage.migrate import migrate

    rows_payload = orjson.dumps(payload(0)).decode()
    raw_db = root / "raw" / "aod.db"
    migrate(raw_db)
    conn = open_connection(raw_db)
    now = "2026-11-22T10:00:00.000000Z"
    with conn:
        conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('p', '/p', 'p', ?)", (now,))
        conn.execute("INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES ('p-1', 'p', 'claude-code', ?, ?)", (now, now))
    started = time.perf_counter()
    for b in range(batches):
        with conn:
            conn.executemany(
                "INSERT INTO events (uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at, received_at,"
                " content_key, payload, payload_bytes) VALUES (?, 'p-1', 'claude-code', 'PostToolUse', 'Bash', ?, ?, ?, ?, ?, ?)",
                # The rows aod stores for the same envelopes: uids as the hook client makes
                # them (UUIDv7) and random content keys (sha256), so both sides pay the same
                # index inserts.
                [(uid7(), f"toolu_{b * BULK + i}", now, now, hashlib.sha256(os.urandom(16)).hexdigest(),
                  rows_payload, len(rows_payload)) for i in range(BULK)],
            )
    raw_rate = batches * BULK / (time.perf_counter() - started)
    conn.close()

    (root / "bulk").mkdir()
    proc, sock = start_aod(root / "bulk")
    try:
        bodies = [orjson.dumps({"events": [orjson.loads(envelope(b * BULK + i)) for i in range(BULK)]}) for b in range(batches)]

        async def run() -> float:
            connector = aiohttp.UnixConnector(path=str(sock), limit=4)
            async with aiohttp.ClientSession(connector=connector) as session:
                async def send(body: bytes) -> None:
                    async with session.post("http://localhost/v1/events", data=body,
                                            headers={"Content-Type": "application/json"}) as resp:
                        result = await resp.json()
                        assert resp.status == 202 and result["accepted"] == BULK, result

                await send(bodies[0])  # warm-up, not counted
                started = time.perf_counter()
                sem = asyncio.Semaphore(4)

                async def limited(body: bytes) -> None:
                    async with sem:
                        await send(body)

                await asyncio.gather(*(limited(b) for b in bodies[1:]))
                return (len(bodies) - 1) * BULK / (time.perf_counter() - started)

        aod_rate = asyncio.run(run())
    finally:
        stop(proc)
    return {"raw": raw_rate, "aod": aod_rate}


def time_command(cmd: list[str], stdin: bytes, runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, input=stdin, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def bench_hook(root: Path, runs: int) -> dict[str, float]:
    hook = REPO / "aod" / "hook.py"
    body = FIXTURE.read_bytes()
    (root / "hook").mkdir()
    proc, sock = start_aod(root / "hook")
    env = os.environ | {"AOD_SOCKET": str(sock), "AOD_DATA_DIR": str(root / "hook")}
    python = sys.executable
    try:
        raw_env = envelope(0)
        baseline = time_command([python, "-S", "-c", RAW_POST, str(sock)], raw_env, runs, env)
        hooked = time_command([python, "-S", str(hook)], body, runs, env)
    finally:
        stop(proc)
    spool_env = env | {"AOD_SOCKET": str(root / "nobody.sock")}
    spooled = time_command([python, "-S", str(hook)], body, runs, spool_env)
    spool_files = len(list((root / "hook" / "spool").glob("*.json")))
    if spool_files != runs:
        raise SystemExit(f"expected {runs} spool files, found {spool_files}")
    return {"baseline": baseline, "hook": hooked, "spool": spooled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--hook-runs", type=int, default=40)
    args = parser.parse_args()
    # Other work on the machine moves every figure here: say how busy it was.
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aod-bench-ingest-") as tmp:
        root = Path(tmp)
        single = bench_single(root, args.requests)
        bulk = bench_bulk(root, args.batches)
        hook = bench_hook(root, args.hook_runs)

    size = len(envelope(0))
    print(f"ingest bench: {args.requests} requests of a {size} B envelope, {CONCURRENCY} concurrent connections;"
          f" load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")
    ratio = single["aod"] / single["bare"]
    print(f"  bare aiohttp + JSON parse (baseline)   {single['bare']:>9,.0f} events/s  p50 {single['bare_p50']:.2f} ms  p99 {single['bare_p99']:.2f} ms")
    print(f"  aod serve POST /v1/events              {single['aod']:>9,.0f} events/s  p50 {single['aod_p50']:.2f} ms  p99 {single['aod_p99']:.2f} ms")
    print(f"  aod serve, first {WARMUP} events of a new data dir {single['aod_cold']:>6,.0f} events/s (not a target)")
    cpu_ratio = single["aod_cpu"] / single["bare_cpu"]
    print(f"  server CPU per event: bare {single['bare_cpu']:.0f} µs, aod {single['aod_cpu']:.0f} µs, ratio {cpu_ratio:.2f}"
          f" (target <= 1.00) {'PASS' if cpu_ratio <= 1.0 else 'FAIL'}")
    print(f"    aod: event loop thread {single['aod_main_cpu']:.0f} µs, other threads (writer, readers, checkpointer)"
          f" {single['aod_cpu'] - single['aod_main_cpu']:.0f} µs; {single['batch']:.1f} requests per group commit")
    print(f"    ratio {ratio:.2f} (target >= 1.00) {'PASS' if ratio >= 1.0 else 'FAIL'};"
          f" p99 {single['aod_p99']:.2f} ms (target < 10 ms) {'PASS' if single['aod_p99'] < 10 else 'FAIL'}")
    print(f"  aod at a steady {STEADY_RATE} events/s: p50 {single['steady_p50']:.2f} ms  p99 {single['steady_p99']:.2f} ms"
          f" (target < 2 ms) {'PASS' if single['steady_p99'] < 2 else 'FAIL'}")
    bulk_ratio = bulk["aod"] / bulk["raw"]
    print(f"  raw apsw, {BULK} rows/tx (baseline)       {bulk['raw']:>9,.0f} events/s")
    print(f"  aod serve, {BULK} events/request          {bulk['aod']:>9,.0f} events/s  ratio {bulk_ratio:.2f}"
          f" (target >= 0.60) {'PASS' if bulk_ratio >= 0.6 else 'FAIL'}")
    hook_ratio = hook["hook"] / hook["baseline"]
    print(f"  python3 -S -c raw socket post (baseline) {hook['baseline']:>7.1f} ms per event (median of {args.hook_runs})")
    print(f"  aod hook (python -S hook.py)             {hook['hook']:>7.1f} ms  ratio {hook_ratio:.2f}"
          f" (target <= 1.30) {'PASS' if hook_ratio <= 1.3 else 'FAIL'}")
    print(f"  aod hook, daemon down (spool)            {hook['spool']:>7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
