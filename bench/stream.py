"""Live stream delivery: `aod serve` against a bare broadcaster, in one run.

    python bench/stream.py [--clients 1,100,500] [--rate 1000] [--seconds 5] [--max-rate-clients 100]

1. Delivery latency p50/p99 with N SSE clients on the Unix socket while a writer posts events
   at a fixed rate (batches every 10 ms). "commit→client" runs from the change_log row's `at`
   stamp (written inside the commit's transaction, millisecond resolution, so figures carry up
   to ~1 ms of rounding) to the moment the client read the frame's last byte; "post→client"
   from just before the POST was sent. Target: p99 < 20 ms at 100 clients, 1,000 events/s.
2. The highest rate sustained with 100 clients before any client is cut (or the writer can no
   longer keep the pace): steps up until one of the two happens.
Baseline: the same clients and writer against a bare server (a subprocess of this file): the
same aiohttp, the same Broadcaster and frame encoding, but rows published straight from the
POST handler: no database, no poller. Every client keeps its own connection; to spare the
bench's own CPU, only up to 20 clients (spread over the set) parse frames; the others count
bytes and watch for being cut.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "claude-code" / "PreToolUse.json"
TICK = 0.01
SAMPLED = 20
MAX_PER_POST = 500
_AT = re.compile(rb'"at":"([^"]+)"')
_UID = re.compile(rb'"uid":"([^"]+)"')


# --- the bare server (baseline) -----------------------------------------------------------------


def bare_server(socket_path: str) -> None:
    """Rows published straight from the POST handler; streams served by the daemon's own Feed.

    The Feed's one read at connect (epoch and head) needs a database: an idle one on a temp
    file, never written after migrating, so nothing on the measured path touches it.
    """
    sys.path.insert(0, str(REPO))
    import logging

    from aiohttp import web

    from aod.cdc.broadcaster import Broadcaster
    from aod.cdc.cursor import StreamFilter
    from aod.cdc.feed import Feed
    from aod.cdc.frames import change_frame
    from aod.storage.database import open_storage
    from aod.timefmt import now_iso

    logging.getLogger("aod.stream").setLevel(logging.ERROR)  # a cut shows in the figures instead
    hub = Broadcaster(queue_size=1000, ping_interval=15)
    seq = 0

    async def events(request: web.Request) -> web.Response:
        nonlocal seq
        body = orjson.loads(await request.read())
        at = now_iso()[:23] + "Z"
        batch = []
        for env in body["events"]:
            seq += 1
            data = orjson.dumps({"id": seq, "uid": env["uid"], "kind": "PreToolUse", "tool_name": "Bash"}).decode()
            batch.append(change_frame("bare", (seq, at, "event", "insert", str(seq), "s", "p", data)))
        hub.publish(batch)
        return web.json_response({"accepted": len(batch), "duplicates": 0, "rejected": []}, status=202)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        transport = request.transport
        feed = Feed(request.app["db"], hub, StreamFilter(), response.write,
                    lambda: transport.abort() if transport else None)
        with contextlib.suppress(ConnectionError):
            await feed.run(None)
        return response

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        data = Path(socket_path).with_suffix(".data")
        data.mkdir(mode=0o700)
        storage = await open_storage(data)
        app["db"] = storage.db
        hub.start()
        yield
        await hub.close()
        await storage.close()

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/events", events)
    app.router.add_get("/v1/stream", stream)
    app.cleanup_ctx.append(lifecycle)
    web.run_app(app, path=socket_path, print=None, access_log=None)


# --- servers ------------------------------------------------------------------------------------


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"no server on {path}")
        time.sleep(0.02)
    time.sleep(0.3)


def start_aod(root: Path) -> tuple[subprocess.Popen, Path]:
    data = root / "aod"
    data.mkdir(mode=0o700)
    config = root / "aod.toml"
    config.write_text('[server]\ntcp = ""\nlog_level = "warning"\n')
    socket_path = data / "aod.sock"
    env = os.environ | {"AOD_DATA_DIR": str(data), "AOD_SOCKET": str(socket_path), "AOD_CONFIG": str(config)}
    aod = shutil.which("aod", path=str(Path(sys.executable).parent)) or "aod"
    proc = subprocess.Popen([aod, "serve"], env=env, stderr=subprocess.DEVNULL)
    wait_for(socket_path, proc)
    return proc, socket_path


def start_bare(root: Path) -> tuple[subprocess.Popen, Path]:
    socket_path = root / "bare.sock"
    proc = subprocess.Popen([sys.executable, __file__, "--bare-server", str(socket_path)])
    wait_for(socket_path, proc)
    return proc, socket_path


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- clients ------------------------------------------------------------------------------------


class Client(asyncio.Protocol):
    """An SSE client reading raw bytes (HTTP/1.0: no chunked framing to undo)."""

    def __init__(self, sampled: bool) -> None:
        self.sampled = sampled
        self.partial = b""
        self.received: list[tuple[bytes, bytes, float, float]] = []  # uid, at, wall, monotonic
        self.bytes = 0
        self.lost = False
        self.measuring = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"GET /v1/stream HTTP/1.0\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.sampled:
            return
        wall, mono = time.time(), time.monotonic()
        frames = (self.partial + data).split(b"\n\n")
        self.partial = frames.pop()
        if not self.measuring:
            return
        for frame in frames:
            uid, at = _UID.search(frame), _AT.search(frame)
            if uid and at:
                self.received.append((uid[1], at[1], wall, mono))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


@dataclass
class Result:
    clients: int
    rate: float
    achieved: float = 0.0
    commit_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    cut: int = 0
    missing: int = 0
    server_cpu: float = 0.0  # CPU seconds per second (1.0 = one core), over the measured window
    client_cpu: float = 0.0

    def pct(self, values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _at_seconds(at: bytes) -> float:
    return datetime.fromisoformat(at.decode().replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(socket_path: Path, server_pid: int, n_clients: int, rate: float, seconds: float,
              warmup: float = 1.0) -> Result:
    loop = asyncio.get_running_loop()
    step = max(1, n_clients // SAMPLED)
    clients = [Client(sampled=(i % step == 0 or i == n_clients - 1)) for i in range(n_clients)]
    for c in clients:
        # One at a time, each until its response began: a burst of connects would overflow the
        # listen backlog (128), and those refused would count as cut.
        await loop.create_unix_connection(lambda c=c: c, str(socket_path))
        async with asyncio.timeout(10):
            while not c.bytes:
                await asyncio.sleep(0.001)
    await asyncio.sleep(0.5)
    payload = orjson.loads(FIXTURE.read_bytes())
    sent_at: dict[bytes, float] = {}
    measured: set[bytes] = set()
    result = Result(n_clients, rate)
    connector = aiohttp.UnixConnector(path=str(socket_path), limit=8)
    tag = f"{os.getpid()}-{n_clients}-{int(rate)}-{time.monotonic_ns()}"
    async with aiohttp.ClientSession(connector=connector) as session:
        in_flight: set[asyncio.Task[None]] = set()

        async def send(uids: list[str]) -> None:
            envelopes = [{"uid": u, "agent": "claude-code", "session": "bench-1",
                          "payload": payload | {"tool_use_id": u}} for u in uids]
            now = time.monotonic()
            for u in uids:
                sent_at[u.encode()] = now
            async with session.post("http://localhost/v1/events", data=orjson.dumps({"events": envelopes}),
                                    headers={"Content-Type": "application/json"}) as resp:
                if resp.status != 202:
                    raise SystemExit(f"POST answered {resp.status}: {await resp.text()}")
                await resp.read()

        started = time.monotonic()
        measured_from = started + warmup
        owed, n, sent_measured, last_tick = 0.0, 0, 0, started
        while (now := time.monotonic()) < started + warmup + seconds:
            if now >= measured_from and not clients[0].measuring:
                for c in clients:
                    c.measuring = True
                cpu_start = (cpu_seconds(server_pid), time.process_time())
            owed += (now - last_tick) * rate
            last_tick = now
            count = min(int(owed), MAX_PER_POST)
            # Pace by the clock; a writer that falls behind shows up as a lower achieved rate.
            if count and len(in_flight) < 8:
                owed -= count
                uids = [f"{tag}-{n + i}" for i in range(count)]
                n += count
                if now >= measured_from:
                    sent_measured += count
                    measured.update(u.encode() for u in uids)
                task = asyncio.create_task(send(uids))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(TICK)
        if in_flight:
            await asyncio.gather(*in_flight)
        result.achieved = sent_measured / seconds
        result.server_cpu = (cpu_seconds(server_pid) - cpu_start[0]) / seconds
        result.client_cpu = (time.process_time() - cpu_start[1]) / seconds
        await asyncio.sleep(1.0)  # let the last frames arrive
    for c in clients:
        if c.lost:
            result.cut += 1
        if not c.sampled:
            continue
        for uid, at, wall, mono in c.received:
            result.commit_ms.append((wall - _at_seconds(at)) * 1000)
            if uid in sent_at:
                result.post_ms.append((mono - sent_at[uid]) * 1000)
    result.missing = max((len(measured - {uid for uid, *_ in c.received}) for c in clients if c.sampled), default=0)
    for c in clients:
        c.measuring = False
    return result


def measure(kind: str, root: Path, n_clients: int, rate: float, seconds: float) -> Result:
    proc, sock = (start_aod if kind == "aod" else start_bare)(root)
    try:
        return asyncio.run(run(sock, proc.pid, n_clients, rate, seconds))
    finally:
        stop(proc)


def fresh_root(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir()
    return path


def line(kind: str, r: Result) -> str:
    return (f"{kind:>4}  {r.clients:>4} clients  {r.rate:>6,.0f}/s (achieved {r.achieved:>6,.0f})  "
            f"commit→client p50 {r.pct(r.commit_ms, .5):6.1f} p99 {r.pct(r.commit_ms, .99):7.1f} ms  "
            f"post→client p50 {r.pct(r.post_ms, .5):6.1f} p99 {r.pct(r.post_ms, .99):7.1f} ms  "
            f"cut {r.cut}  missing {r.missing}  cpu server {r.server_cpu:.2f} bench {r.client_cpu:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare-server", help=argparse.SUPPRESS)
    parser.add_argument("--clients", default="1,100,500")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--max-rate-clients", type=int, default=100)
    parser.add_argument("--max-rate-steps", default="1000,2000,3000,4000,6000,8000,12000,16000")
    parser.add_argument("--no-max-rate", action="store_true")
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return

    base = Path(tempfile.mkdtemp(prefix="aodb", dir="/tmp"))  # short: AF_UNIX paths are limited
    try:
        print(f"latency at {args.rate:,.0f} events/s, {args.seconds:g} s measured per run")
        for n in (int(x) for x in args.clients.split(",")):
            bare = measure("bare", fresh_root(base, f"bare{n}"), n, args.rate, args.seconds)
            print(line("bare", bare), flush=True)
            aod = measure("aod", fresh_root(base, f"aod{n}"), n, args.rate, args.seconds)
            print(line("aod", aod), flush=True)
            ratio = aod.pct(aod.commit_ms, .99) / bare.pct(bare.commit_ms, .99)
            print(f"      ratio aod/bare commit→client p99: {ratio:.2f}", flush=True)
        if args.no_max_rate:
            return
        n = args.max_rate_clients
        print(f"highest sustained rate with {n} clients (no client cut, writer within 10% of the pace)")
        for kind in ("bare", "aod"):
            best = 0.0
            for rate in (float(x) for x in args.max_rate_steps.split(",")):
                r = measure(kind, fresh_root(base, f"max-{kind}-{int(rate)}"), n, rate, args.seconds)
                print(line(kind, r), flush=True)
                if r.cut or r.achieved < 0.9 * rate:
                    break
                best = rate
            print(f"{kind:>4}  highest sustained: {best:,.0f} events/s", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
