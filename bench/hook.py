"""What a hook firing costs the agent: `aod hooks install`'s entries run as Claude Code runs them.

    python bench/hook.py [--runs 40]

A stand-in agent reads the settings.json that `aod hooks install` wrote (into a temporary
CLAUDE_CONFIG_DIR) and fires PreToolUse the way Claude Code does: each matching command handler
in exec form (`command` + `args`, no shell), the payload on stdin; a handler with `"async": true`
is not waited for, so the agent's added wait is the spawn and the write of the payload.

1. One firing, waited for (what the agent waited before `async`): wall time of the installed
   entry, vs the floor: `python3 -S -c` posting the same bytes over the same socket (<= 1.3x);
   and of `aod hook`, the entry project scope writes (the console script, with site-packages).
2. The agent's added wait with `async`: from the firing to the agent going on (median, p95).
Every fired event must reach the daemon (checked by counting them afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "claude-code" / "PreToolUse.json"
AOD = shutil.which("aod", path=str(Path(sys.executable).parent)) or "aod"
# The floor: the least any process can do to hand the event over (a fresh interpreter, no
# site-packages, one post on the Unix socket, read the answer).
RAW_POST = """
import socket, sys
body = sys.stdin.buffer.read()
s = socket.socket(socket.AF_UNIX); s.settimeout(0.3); s.connect(sys.argv[1])
s.sendall(b"POST /v1/hooks/claude-code HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\n"
          b"Content-Length: " + str(len(body)).encode() + b"\\r\\nConnection: close\\r\\n\\r\\n" + body)
s.recv(65536)
"""


def get_json(socket_path: Path, path: str) -> Any:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(socket_path))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def start_daemon(root: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    data_dir = root / "data"
    config = root / "config.toml"
    config.write_text('[server]\ntcp = ""\nlog_level = "warning"\n')
    env = {**os.environ, "AOD_DATA_DIR": str(data_dir), "AOD_SOCKET": str(data_dir / "aod.sock"),
           "AOD_CONFIG": str(config), "CLAUDE_CONFIG_DIR": str(root / "claude")}
    proc = subprocess.Popen([AOD, "serve"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (data_dir / "aod.sock").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("aod serve did not start")
        time.sleep(0.05)
    time.sleep(0.3)  # readiness: the spool drain
    return proc, env


def matching_handlers(settings: dict[str, Any], event: str, tool: str) -> list[dict[str, Any]]:
    """The command handlers Claude Code would run for `event` on `tool` (matcher: "*", "" or absent
    match all; exact names otherwise; nothing else is needed for aod's entries)."""
    handlers = []
    for group in settings.get("hooks", {}).get(event, []):
        matcher = group.get("matcher") or "*"
        if matcher == "*" or tool in matcher.split("|"):
            handlers += [h for h in group["hooks"] if h.get("type") == "command"]
    return handlers


def fire(handlers: list[dict[str, Any]], payload: bytes, env: dict[str, str],
         background: list[subprocess.Popen[bytes]]) -> float:
    """Run the handlers as Claude Code does; the seconds until the agent may go on."""
    started = time.perf_counter()
    waited = []
    for handler in handlers:
        argv = [handler["command"], *handler["args"]]  # exec form: no shell
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
        (background if handler.get("async") else waited).append(proc)
    for proc in waited:
        proc.wait()
    return time.perf_counter() - started


def time_run(argv: list[str], payload: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, input=payload, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aod-bench-hook-") as tmp:
        root = Path(tmp)
        proc, env = start_daemon(root)
        try:
            subprocess.run([AOD, "hooks", "install"], env=env, check=True, stdout=subprocess.DEVNULL)
            settings = json.loads((root / "claude" / "settings.json").read_text())
            handlers = matching_handlers(settings, "PreToolUse", "Bash")
            if [h.get("async") for h in handlers] != [True]:
                raise SystemExit(f"expected one async aod handler for PreToolUse, got {handlers}")
            entry = [handlers[0]["command"], *handlers[0]["args"]]
            payload = FIXTURE.read_bytes()
            sock = env["AOD_SOCKET"]
            floor, waited, console, spawn = [], [], [], []
            background: list[subprocess.Popen[bytes]] = []
            for i in range(args.runs):
                body = json.dumps({**json.loads(payload), "tool_use_id": f"toolu_bench_{i}"}).encode()
                floor.append(time_run([sys.executable, "-S", "-c", RAW_POST, sock], body, env))
                waited.append(time_run(entry, json.dumps({**json.loads(body), "tool_use_id": f"w{i}"}).encode(), env))
                console.append(time_run([AOD, "hook"], json.dumps({**json.loads(body), "tool_use_id": f"c{i}"}).encode(),
                                        env))
                spawn.append(fire(handlers, json.dumps({**json.loads(body), "tool_use_id": f"a{i}"}).encode(), env,
                                  background))
                time.sleep(0.05)  # one tool call at a time, as an agent makes them
            failed = [p for p in background if p.wait(30) != 0]
            time.sleep(0.5)
            stored = get_json(Path(sock), "/v1/events?kind=PreToolUse&limit=500")["items"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    expected = 4 * args.runs
    ms = [statistics.median(x) * 1000 for x in (floor, waited, spawn, console)]
    p95 = sorted(spawn)[int(0.95 * (len(spawn) - 1))] * 1000
    ratio = ms[1] / ms[0]
    print(f"hook bench: PreToolUse, {args.runs} firings each, median wall time")
    print(f"  floor: python3 -S -c posting the payload   {ms[0]:6.1f} ms")
    print(f"  one firing, waited for (the entry)         {ms[1]:6.1f} ms  ratio {ratio:.2f} (target <= 1.30) "
          f"{'PASS' if ratio <= 1.3 else 'FAIL'}")
    print(f"  one firing of `aod hook` (project scope)   {ms[3]:6.1f} ms  ratio {ms[3] / ms[0]:.2f}")
    print(f"  the agent's added wait with async          {ms[2]:6.1f} ms  (p95 {p95:.1f} ms): the spawn only")
    print(f"  events stored {len(stored)} of {expected}; async hooks that failed: {len(failed)}")
    return 0 if len(stored) == expected and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
