"""The dashboard in headless Chromium: the board's first paint at 10k sessions / 1M events, and the
page's frame time while 1,000 events/s stream in; each against a baseline measured in the same run.

    python bench/dashboard.py [--db PATH] [--events N] [--rate 1000] [--seconds 5]

1. First paint: from `page.goto(/login?token=…)` to the board's seven groups being drawn with
   cards in them (and Chromium's first-contentful-paint), on a daemon holding the database of
   bench/stats.py (20 projects, 10,000 sessions, N events; built once and kept at --db), against
   the same page on an empty daemon.
2. Frame time: the intervals between animation frames on the board (requestAnimationFrame, as the
   page itself renders) while a writer posts --rate events/s to the big daemon's Unix socket (a
   batch every 50 ms, PostToolUse events for random existing sessions), against the same page
   idle. Also how many changes the page applied, to show it kept up.

Needs /usr/bin/chromium and playwright (the test extras). Prints one table.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Run as `python bench/dashboard.py`: the repository root holds the test helpers this reuses.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import launched_browser, new_page  # noqa: E402
from tests.helpers.daemon import Daemon, request  # noqa: E402

FRAME_RECORDER = """() => {
  window.__frames = [];
  let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""
BOARD_DRAWN = "document.querySelectorAll('section.group').length === 7"


def _stats_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_stats", ROOT / "bench" / "stats.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _poll(page: Any, js: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(js):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {js}")
        time.sleep(0.005)


def first_paint(browser: Any, d: Daemon, with_cards: bool) -> tuple[float, float]:
    """(ms to the drawn board, ms to first-contentful-paint) in a fresh context."""
    token = (d.data_dir / "token").read_text().strip()
    base = f"http://{d.status()['tcp']}"
    with new_page(browser) as page:
        t0 = time.perf_counter()
        page.goto(f"{base}/login?token={token}", wait_until="commit")
        _poll(page, BOARD_DRAWN + (" && document.querySelectorAll('article.card').length > 0" if with_cards else ""))
        drawn = (time.perf_counter() - t0) * 1000
        fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
        page.assert_no_errors()
    return drawn, fcp


def _writer(d: Daemon, sessions: list[str], rate: int, seconds: float, posted: list[int]) -> None:
    rng = random.Random(7)
    batch, interval = max(1, rate // 20), 0.05
    end = time.monotonic() + seconds
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        events = []
        for _ in range(batch):
            n += 1
            sid = rng.choice(sessions)
            events.append({"agent": "claude-code", "session": sid, "payload": {
                "session_id": f"bench-{sid}", "cwd": "/src/bench", "hook_event_name": "PostToolUse",
                "tool_name": rng.choice(["Bash", "Read", "Edit"]), "tool_use_id": f"toolu_bench_{n}",
                "tool_input": {"command": "pytest -q"}, "tool_response": {"stdout": "ok"}}})
        reply = request(d.socket, "POST", "/v1/events", {"events": events}, timeout=30)
        if reply.status != 202:
            raise SystemExit(f"ingest answered {reply.status}: {reply.body}")
        posted[0] += len(events)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def frames(browser: Any, d: Daemon, seconds: float, load: tuple[list[str], int] | None) -> dict[str, float]:
    token = (d.data_dir / "token").read_text().strip()
    with new_page(browser) as page:
        page.goto(f"http://{d.status()['tcp']}/login?token={token}")
        _poll(page, BOARD_DRAWN + " && document.querySelectorAll('article.card').length > 0")
        page.wait_for_timeout(1000)  # the first reads settle
        applied0 = page.evaluate("window.aod.store.feedTotal")
        page.evaluate(FRAME_RECORDER)
        posted = [0]
        writer = threading.Thread(target=_writer, args=(d, *load, seconds, posted)) if load else None
        t0 = time.perf_counter()
        if writer:
            writer.start()
        page.wait_for_timeout(seconds * 1000)
        if writer:
            writer.join()
        elapsed = time.perf_counter() - t0
        page.wait_for_timeout(1000)  # the last changes reach the page
        samples = sorted(page.evaluate("window.__frames")[1:])
        applied = page.evaluate("window.aod.store.feedTotal") - applied0
        page.assert_no_errors()
    q = statistics.quantiles(samples, n=100)
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": samples[-1], "over50": sum(s > 50 for s in samples),
            "frames": len(samples), "rate": posted[0] / elapsed, "applied": applied}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/aod-bench-dashboard/data/aod.db"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _stats_bench().build(args.db, args.events)
    stats_bench = _stats_bench()
    sessions = [f"p{p}-{n}" for p in range(stats_bench.PROJECTS) for n in range(stats_bench.SESSIONS // stats_bench.PROJECTS)]

    scratch = Path(tempfile.mkdtemp(prefix="aodbd", dir="/tmp"))
    empty_dir = scratch / "empty"
    empty_dir.mkdir(mode=0o700)
    env = {"HOME": str(scratch)}
    big = Daemon(args.db.parent, env, 'log_level = "warning"\n').start(wait=False)
    empty = Daemon(empty_dir, env, 'log_level = "warning"\n').start(wait=False)
    try:
        big.wait_ready(120)
        empty.wait_ready(30)
        with launched_browser() as browser:
            first_paint(browser, empty, False)  # warm the browser's code caches for both
            rows = []
            for name, daemon, cards in (("empty daemon (baseline)", empty, False), ("10k sessions / 1M events", big, True)):
                drawn, fcp = zip(*(first_paint(browser, daemon, cards) for _ in range(3)), strict=True)
                rows.append((name, statistics.median(drawn), statistics.median(fcp)))
            print("first paint of the board (median of 3)        drawn ms   FCP ms")
            for name, drawn_ms, fcp_ms in rows:
                print(f"  {name:<44} {drawn_ms:8.0f} {fcp_ms:8.0f}")
            idle = frames(browser, big, args.seconds, None)
            busy = frames(browser, big, args.seconds, (sessions, args.rate))
        print("frame time on the board (ms)       p50    p95    p99    max  >50ms  frames  events/s  changes applied")
        for name, f in (("idle (baseline)", idle), (f"{args.rate} events/s", busy)):
            print(f"  {name:<30} {f['p50']:6.1f} {f['p95']:6.1f} {f['p99']:6.1f} {f['max']:6.1f} {f['over50']:6d} "
                  f"{f['frames']:7d} {f['rate']:9.0f} {f['applied']:16d}")
    finally:
        for d in (big, empty):
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
