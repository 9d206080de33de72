"""Idle CPU: `aod serve` with 10 live tmux sessions and nothing happening, against a bare aiohttp
app doing nothing, measured side by side in one run from /proc/<pid>/stat (utime + stime).

    python bench/idle.py [--minutes 1] [--sessions 10]

Both servers start, the sessions are spawned through aod's API (each `sleep` in its own tmux
session on a private tmux server), then a settle period lets the start-up work finish (the
reconcile, the tick after the spawns' commits, the janitor's first prune). Then neither server is
touched for `--minutes`. Target (issue 15): aod <= 60 ms of CPU per minute. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTLE = 10.0

BARE_SERVER = """
import sys
from aiohttp import web
async def handle(request):
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_get("/healthz", handle)
web.run_app(app, path=sys.argv[1], print=None, access_log=None)
"""


class Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def call(sock: Path, method: str, path: str, body: object = None) -> tuple[int, object]:
    conn = Unix(str(sock))
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def wait_answering(sock: Path, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if call(sock, "GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"no answer on {sock}")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--sessions", type=int, default=10)
    args = ap.parse_args()
    if not Path("/proc/self/stat").exists():
        raise SystemExit("needs /proc (Linux)")
    tmp = Path(tempfile.mkdtemp(prefix="aodidle", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_", "TMUX"))}
    data = tmp / "data"
    data.mkdir(mode=0o700)
    config = tmp / "config.toml"
    config.write_text('[server]\ntcp = "127.0.0.1:0"\n')
    env |= {"AOD_DATA_DIR": str(data), "AOD_CONFIG": str(config), "AOD_SOCKET": str(data / "aod.sock"),
            "XDG_RUNTIME_DIR": str(tmp), "TMUX_TMPDIR": str(tmp)}
    aod_bin = Path(sys.executable).parent / "aod"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        aod = subprocess.Popen([str(aod_bin), "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=open(tmp / "aod.log", "wb"))  # noqa: SIM115 - lives as long as the process
        procs.append(aod)
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(tmp / "bare.sock")], env=env)
        procs.append(bare)
        wait_answering(data / "aod.sock", aod, "/readyz")
        wait_answering(tmp / "bare.sock", bare, "/healthz")
        project = tmp / "project"
        project.mkdir()
        for _ in range(args.sessions):
            status, body = call(data / "aod.sock", "POST", "/v1/sessions", {"project": str(project),
                                                                          "command": ["sleep", "100000"]})
            assert status == 201, body
        time.sleep(SETTLE)
        seconds = args.minutes * 60
        before = {p.pid: cpu_ticks(p.pid) for p in (aod, bare)}
        started = time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - started
        after = {p.pid: cpu_ticks(p.pid) for p in (aod, bare)}
        status, body = call(data / "aod.sock", "GET", "/v1/sessions?active=1&limit=500")
        live = sum(1 for s in body["items"] if s["is_alive"]) if status == 200 else -1  # type: ignore[index]
        tick = os.sysconf("SC_CLK_TCK")

        def per_minute(pid: int) -> float:
            return (after[pid] - before[pid]) / tick * 1000 / (took / 60)

        print(f"idle {took:.0f} s, {live} live tmux sessions (of {args.sessions} spawned)")
        print(f"  bare aiohttp app   {per_minute(bare.pid):7.1f} ms CPU / min")
        print(f"  aod serve          {per_minute(aod.pid):7.1f} ms CPU / min   (target <= 60)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        tmux = shutil.which("tmux")
        if tmux:
            subprocess.run([tmux, "kill-server"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
