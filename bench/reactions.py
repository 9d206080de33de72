"""The reaction engine's cost, and how fast a red check becomes a nudge, in one run.

    python bench/reactions.py [--sessions 10,100,1000] [--rounds 30]

1. One engine evaluation (what runs after each burst of commits) over N recently active
   sessions, each with an open PR of 5 checks on its head commit, one failing, and its
   ci-failed tracker already nudged: nothing to decide, the steady state. Baseline: reading
   the same rows (sessions, PRs, head checks, comments, trackers) with no rules at all. Also
   the look after a commit that touched one session (what runs during steady ingest).
2. Through a real `aod serve` and a real tmux pane: POST /v1/sessions/{id}/pr with a new red
   commit → the nudge marked sent (its text in the pane). Baseline: the POST's round trip.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aod.config import parse_config  # noqa: E402
from aod.reactions.engine import apply, evaluate  # noqa: E402
from aod.scm.observation import parse_observation  # noqa: E402
from aod.scm.record import record_observations  # noqa: E402
from aod.sessions.facts import FactWriter  # noqa: E402
from aod.storage import prs, trackers  # noqa: E402
from aod.storage.connection import open_connection  # noqa: E402
from aod.storage.migrate import migrate  # noqa: E402
from aod.timefmt import now_iso  # noqa: E402


def _observation(i: int) -> dict[str, object]:
    checks = [{"name": f"check-{k}", "status": "failed" if k == 0 else "passed", "url": f"https://ci/{i}/{k}"}
              for k in range(5)]
    return parse_observation({"url": f"https://github.com/acme/w/pull/{i}", "number": i + 1, "state": "open",
                              "head_sha": f"sha{i}", "checks": checks})


def _seed(path: Path, n: int) -> None:
    migrate(path)
    conn = open_connection(path)
    now = now_iso()
    facts = FactWriter(lambda: 600.0)
    with conn:
        conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('w', '/w', 'w', ?)", (now,))
        for i in range(n):
            conn.execute("INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES (?, 'w', 'a', ?, ?)",
                         (f"w-{i}", now, now))
            record_observations(conn, facts, f"w-{i}", [_observation(i)], now=now)
        apply(conn, parse_config({}), time.time(), [f"w-{i}" for i in range(n)])
    conn.close()


def _baseline_read(conn: object, _config: object, _now: float) -> int:
    rows = trackers.candidate_sessions(conn, "0")  # type: ignore[arg-type]
    ids = [r["id"] for r in rows]
    found = prs.for_sessions(conn, ids)  # type: ignore[arg-type]
    trackers.for_sessions(conn, ids)  # type: ignore[arg-type]
    return sum(len(v) for v in found.values())


def bench_evaluate(sizes: list[int], rounds: int) -> None:
    config = parse_config({})
    print("1. one engine evaluation, steady state (nothing to decide); medians")
    print(f"   {'sessions':>8}  {'read only':>10}  {'evaluate':>10}  {'ratio':>6}  {'per session':>11}"
          f"  {'one changed':>11}")
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="aod-bench-"))
        try:
            _seed(tmp / "aod.db", n)
            conn = open_connection(tmp / "aod.db")
            times: dict[str, list[float]] = {"read": [], "evaluate": [], "one": []}

            def one(conn: object, config: object, now: float) -> object:
                return evaluate(conn, config, now, ["w-0"])  # type: ignore[arg-type]

            for _ in range(rounds):  # interleaved, so drift hits all alike
                for name, fn in (("read", _baseline_read), ("evaluate", evaluate), ("one", one)):
                    start = time.perf_counter()
                    with conn:
                        result = fn(conn, config, time.time())
                    times[name].append(time.perf_counter() - start)
                    if name != "read":
                        assert not result.decisions, "steady state expected"  # type: ignore[attr-defined]
            conn.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        read, ev = statistics.median(times["read"]), statistics.median(times["evaluate"])
        single = statistics.median(times["one"])
        print(f"   {n:>8}  {read * 1000:>8.2f}ms  {ev * 1000:>8.2f}ms  {ev / read:>5.1f}x  {ev / n * 1e6:>9.1f}µs"
              f"  {single * 1000:>9.2f}ms")


def bench_latency(rounds: int) -> None:
    from tests.helpers.daemon import Daemon

    root = Path(tempfile.mkdtemp(prefix="aodb", dir="/tmp"))
    tmux_env = {**os.environ, "TMUX_TMPDIR": str(root)}
    tmux_env.pop("TMUX", None)
    data = root / "data"
    data.mkdir(mode=0o700)
    env = {"TMUX_TMPDIR": str(root), "XDG_CONFIG_HOME": str(root / "c"), "XDG_RUNTIME_DIR": str(root / "r")}
    # retries high, no timer, and a new check name each commit (no CI brake): every red
    # commit is nudged, none escalates.
    d = Daemon(data, env, '[reactions.ci-failed]\nretries = 100\nescalate_after = "never"\n')
    try:
        subprocess.run(["tmux", "new-session", "-d", "-s", "bench", "cat > /dev/null"], env=tmux_env, check=True)
        pane = subprocess.run(["tmux", "display-message", "-p", "-t", "bench", "#{pane_id}"], env=tmux_env,
                              check=True, capture_output=True, text=True).stdout.strip()
        d.start()
        d.post("/v1/events", {"agent": "claude-code", "runtime": {"tmux_pane": pane}, "payload": {
            "session_id": "bench", "hook_event_name": "SessionStart", "cwd": str(root)}})
        sid = d.get("/v1/sessions").body["items"][0]["id"]
        post, nudge = [], []
        for i in range(rounds):
            body = {"url": "https://github.com/acme/w/pull/1", "number": 1, "state": "open", "head_sha": f"c{i}",
                    "checks": [{"name": f"unit-{i}", "status": "failed", "url": f"https://ci/{i}"}]}
            start = time.perf_counter()
            assert d.post(f"/v1/sessions/{sid}/pr", body).status == 200
            post.append(time.perf_counter() - start)
            deadline = time.monotonic() + 10
            while True:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no nudge after 10 s; daemon log:\n{d.log.read_text()[-3000:]}")
                found = d.get(f"/v1/sessions/{sid}").body["trackers"]
                nudges = found[0]["nudges"] if found else []
                if len(nudges) == i + 1 and nudges[0]["status"] == "sent":
                    break
                time.sleep(0.002)
            nudge.append(time.perf_counter() - start)
        p, n = statistics.median(post), statistics.median(nudge)
        print(f"2. red commit -> nudge sent, median of {rounds}")
        print(f"   POST /v1/sessions/ID/pr round trip (baseline) {p * 1000:.1f} ms;"
              f" POST -> nudge typed and marked sent {n * 1000:.1f} ms ({n / p:.1f}x;"
              " includes send_to_session's 150 ms Enter delay)")
    finally:
        if d.proc is not None:
            d.stop()
        subprocess.run(["tmux", "kill-server"], env=tmux_env, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    bench_evaluate([int(n) for n in args.sessions.split(",")], args.rounds)
    bench_latency(max(5, args.rounds // 2))


if __name__ == "__main__":
    main()
