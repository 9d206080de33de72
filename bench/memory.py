"""Memory and start-up of a real `aod serve` on a 1M-event database, against baselines in one run.

    python bench/memory.py [--events 1000000] [--clients 100] [--posts 1000]

1. RSS (VmRSS, and the peak VmHWM, from /proc/<pid>/status) of `aod serve` on a copy of a
   1M-event database: once `/readyz` answers, then with --clients SSE clients on `GET /v1/stream`
   (raw HTTP/1.1 over the Unix socket, all read by one background thread) after --posts events
   were posted and every client received each one's frame. Target (issue 15): <= 120 MB.
   Baselines: the same daemon on an empty (migrated) database with no clients, and a bare
   aiohttp app process (one route, nothing else).
2. Start-up: from spawning `aod serve` to `/readyz` answering 200, polled every 10 ms, on the
   1M-event database. Target: < 1 s. Baselines: the same on the empty database, and the bare
   aiohttp app to its first 200.

The database is bench/stats.py's (its `build`: the real migrations, 20 projects, 10,000
sessions, N events over 30 days). It is built once and cached under /tmp/aod-bench-memory/<key>,
the key naming this file's version, the newest migration and N, so a second run only copies it
(~1.3 GB) into a fresh data dir and fsyncs it. The copy leaves it in the page cache: start-up
is measured warm; it is measured twice, the first start on the fresh copy and a restart.
Retention is set to 10 years so the janitor does not delete rows of the copy at start (its
events end at stats.END). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import selectors
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import stats  # noqa: E402  (bench/stats.py: the 1M-event database builder)

from aod.storage.migrate import migrate, migration_ids  # noqa: E402

VERSION = "v1"  # bump when the cached database must be rebuilt
CACHE = Path("/tmp/aod-bench-memory")

BARE_SERVER = """
import sys
from aiohttp import web
async def handle(request):
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_get("/healthz", handle)
web.run_app(app, path=sys.argv[1], print=None, access_log=None)
"""

CONFIG = """[server]
tcp = ""
log_level = "warning"

[retention]
events_days = 3650
change_log_days = 3650
"""


class Unix(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def get(sock: Path, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = Unix(sock, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            parts = value.split()
            out[key] = int(parts[0]) / 1024 if key != "Threads" else int(parts[0])
    return out


def cached_db(events: int) -> Path:
    key = f"{VERSION}-{migration_ids()[-1]}-{events}"
    path = CACHE / key / "aod.db"
    if path.exists():
        print(f"database: cached {path} ({path.stat().st_size / 2**20:,.0f} MB), not rebuilt")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name("building.db")
    for stale in path.parent.glob("building.db*"):
        stale.unlink()
    print(f"database: building once into {path} (bench/stats.py build; later runs reuse it)")
    stats.build(building, events)
    building.rename(path)
    return path


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], sock: Path, ready_path: str) -> None:
        self.sock, self.ready_path = sock, ready_path
        self.started = time.monotonic()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from spawn to the first 200 on ready_path."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"server exited with {self.proc.returncode}: {self.log.read().decode()[-2000:]}")
            try:
                if get(self.sock, self.ready_path, timeout=2)[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise SystemExit(f"not ready after {timeout} s")

    def settle(self, seconds: float) -> tuple[float, dict[str, float]]:
        """Its start-up time and its memory `seconds` after it is ready; then stopped."""
        try:
            start = self.wait_ready()
            time.sleep(seconds)
            return start, proc_status(self.proc.pid)
        finally:
            self.stop()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_aod(data_dir: Path) -> Server:
    config = data_dir.parent / f"{data_dir.name}.toml"
    config.write_text(CONFIG)
    sock = data_dir / "aod.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
    env |= {"AOD_DATA_DIR": str(data_dir), "AOD_SOCKET": str(sock), "AOD_CONFIG": str(config)}
    aod = shutil.which("aod", path=str(Path(sys.executable).parent)) or "aod"
    return Server([aod, "serve"], env, sock, "/readyz")


class Clients:
    """N raw SSE connections, read by one background thread that counts `event: event` frames."""

    MARK = b"event: event\n"

    def __init__(self, sock: Path, n: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.counts = [0] * n
        self.tails = [b""] * n
        self.closed = 0
        self.socks = []
        for i in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(sock))
            s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.socks.append(s)
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.running:
            for key, _ in self.sel.select(0.2):
                i = key.data
                try:
                    data = key.fileobj.recv(262144)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(key.fileobj)
                    self.closed += 1
                    continue
                buf = self.tails[i] + data
                self.counts[i] += buf.count(self.MARK)
                # Keep a tail shorter than the mark so a mark split across reads is counted once.
                self.tails[i] = buf[-(len(self.MARK) - 1):]

    def wait(self, at_least: int, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if min(self.counts) >= at_least:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.running = False
        self.thread.join()
        for s in self.socks:
            s.close()


def post_events(sock: Path, total: int, batch: int = 50) -> None:
    conn = Unix(sock)
    tag = f"mem-{os.getpid()}-{time.monotonic_ns()}"
    try:
        for base in range(0, total, batch):
            envelopes = [{
                "uid": f"{tag}-{i}", "agent": "claude-code", "session": "bench-memory",
                "payload": {"session_id": "bench-memory", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                            "tool_use_id": f"toolu_{tag}_{i}", "cwd": "/home/alice/src/my-project",
                            "tool_input": {"command": "pytest -q tests/", "description": "Run the tests"}},
            } for i in range(base, min(base + batch, total))]
            conn.request("POST", "/v1/events", body=json.dumps({"events": envelopes}).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 202:
                raise SystemExit(f"POST answered {resp.status}: {body[:500]!r}")
            time.sleep(0.05)  # ~1,000 events/s
    finally:
        conn.close()


def mb(s: dict[str, float]) -> str:
    return f"{s['VmRSS']:6.1f} MB (peak {s['VmHWM']:6.1f}, anon {s['RssAnon']:5.1f}, file {s['RssFile']:5.1f}, {s['Threads']} threads)"


def live_sessions(db: Path) -> int:
    """Sessions with no termination_reason (`aod sessions --active`): the SCM observer lists those touched in 24 h."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM sessions WHERE termination_reason IS NULL").fetchone()[0]
    finally:
        conn.close()


def run(big_db: Path, n_clients: int, n_posts: int) -> None:
    print(f"{live_sessions(big_db):,} active sessions in it, updated_at {stats.END:%Y-%m-%d %H:%M} UTC "
          "(the SCM observer lists those touched within 24 h: figures after that differ)")
    with tempfile.TemporaryDirectory(prefix="aod-bench-memory-") as tmp:
        tmpdir = Path(tmp)

        # Bare aiohttp app.
        bare_sock = tmpdir / "bare.sock"
        bare = Server([sys.executable, "-c", BARE_SERVER, str(bare_sock)], dict(os.environ), bare_sock, "/healthz")
        bare_start, bare_mem = bare.settle(1)

        # aod on an empty (migrated) database, no clients.
        empty_dir = tmpdir / "empty"
        empty_dir.mkdir(mode=0o700)
        migrate(empty_dir / "aod.db")
        empty_start, empty_mem = start_aod(empty_dir).settle(2)

        # aod on a copy of the 1M-event database.
        big_dir = tmpdir / "big"
        big_dir.mkdir(mode=0o700)
        t = time.monotonic()
        shutil.copyfile(big_db, big_dir / "aod.db")
        # Written back before the start: else the kernel flushes 1.2 GB of dirty pages under the
        # daemon's first fsyncs, and start-up measures the copy.
        with open(big_dir / "aod.db", "rb+") as f:
            os.fsync(f.fileno())
        print(f"copied (and fsynced) the 1M-event database in {time.monotonic() - t:.1f} s")
        big = start_aod(big_dir)
        try:
            big_start = big.wait_ready()
            big_ready_mem = proc_status(big.proc.pid)
            time.sleep(2)
            big_idle_mem = proc_status(big.proc.pid)
            clients = Clients(big.sock, n_clients)
            try:
                time.sleep(1)
                status = json.loads(get(big.sock, "/v1/status")[1])
                connected = status.get("stream", {}).get("clients")
                t = time.monotonic()
                post_events(big.sock, n_posts)
                delivered = clients.wait(n_posts)
                delivery = time.monotonic() - t
                loaded_mem = proc_status(big.proc.pid)
                time.sleep(3)
                later_mem = proc_status(big.proc.pid)
                status = json.loads(get(big.sock, "/v1/status")[1])
                cut = status.get("stream", {}).get("cut")
                got = (min(clients.counts), max(clients.counts), clients.closed)
            finally:
                clients.close()
        finally:
            big.stop()

        # The same copy again: a restart (the first start on a fresh copy also wrote its WAL).
        again = start_aod(big_dir)
        try:
            restart = again.wait_ready()
        finally:
            again.stop()

    print()
    print("RSS (/proc/<pid>/status)")
    print(f"  bare aiohttp app                        {mb(bare_mem)}")
    print(f"  aod serve, empty db, no clients         {mb(empty_mem)}")
    print(f"  aod serve, 1M events, at /readyz        {mb(big_ready_mem)}")
    print(f"  aod serve, 1M events, 2 s later         {mb(big_idle_mem)}")
    print(f"  aod serve, 1M events, {n_clients} SSE clients   {mb(loaded_mem)}   <- target <= 120 MB")
    print(f"    ... 3 s later                         {mb(later_mem)}")
    print(f"    clients connected per /v1/status: {connected}; {n_posts} events posted, every client got "
          f"{'all' if delivered else 'NOT all'} in {delivery:.1f} s (frames per client {got[0]}..{got[1]}, "
          f"closed {got[2]}, stream.cut {cut})")
    print("Start-up (spawn -> first 200)")
    print(f"  bare aiohttp app, /healthz              {bare_start * 1000:7.0f} ms")
    print(f"  aod serve, empty db, /readyz            {empty_start * 1000:7.0f} ms")
    print(f"  aod serve, 1M events, /readyz           {big_start * 1000:7.0f} ms   <- target < 1000 ms")
    print(f"  aod serve, 1M events, /readyz, restart  {restart * 1000:7.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--posts", type=int, default=1000)
    args = ap.parse_args()
    run(cached_db(args.events), args.clients, args.posts)


if __name__ == "__main__":
    main()
