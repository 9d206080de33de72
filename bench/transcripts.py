"""Transcripts (issue 17): lines/s over a generated corpus of Claude Code transcripts, parsed alone
and imported end to end (`aod import claude` into a real `aod serve`), and the time ccusage takes
for its daily report on the same files.

    python bench/transcripts.py [--files N] [--size-mb M] [--dir PATH] [--ccusage PATH]

The corpus is N transcript files of M MB together (default 400 files, 100 MB: under two minutes
here; the issue's size is --files 10000 --size-mb 2000), generated once with a fixed seed into
--dir (default /tmp/aod-bench-transcripts-N-M) in Claude Code's layout: prompts, assistant
messages written once per content block (the same message id and request id, as Claude Code
does), tool calls and their results (lognormal sizes, a few large), subagent sidechains, three
models over the last 30 days. ccusage is found as --ccusage, on PATH, or where
tests/test_usage_ccusage.py installs it; without it that part is skipped. Both tools' token totals
are printed: they must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from aod.transcripts import lines as transcript_lines

REPO = Path(__file__).resolve().parent.parent
MODELS = [("claude-sonnet-4-5-20250929", 70), ("claude-haiku-4-5-20251001", 20), ("claude-opus-4-1-20250805", 10)]
TOOLS = ["Bash", "Read", "Edit", "Grep", "Glob", "Write", "Task"]
DAYS = 30


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class _Session:
    def __init__(self, rng: random.Random, project: str, start: float) -> None:
        self.rng, self.t = rng, start
        self.sid = str(uuid.UUID(int=rng.getrandbits(128)))
        self.cwd = f"/home/dev/{project}"
        self.n = 0

    def _base(self, kind: str, sidechain: bool = False) -> dict[str, Any]:
        self.n += 1
        self.t += self.rng.expovariate(1 / 8)
        return {"parentUuid": None, "isSidechain": sidechain, "userType": "external", "cwd": self.cwd,
                "sessionId": self.sid, "version": "2.0.14", "gitBranch": "main", "type": kind,
                "uuid": f"{self.sid[:8]}-{self.n}", "timestamp": _stamp(self.t)}

    def prompt(self) -> list[dict[str, Any]]:
        line = self._base("user")
        line["message"] = {"role": "user", "content": "Please " + " ".join(self.rng.choices(
            ["fix", "the", "failing", "test", "in", "checkout", "and", "refactor", "cart", "totals"], k=30))}
        return [line]

    def assistant(self, tool: bool, sidechain: bool = False) -> list[dict[str, Any]]:
        model = self.rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
        mid, rid = f"msg_{self.rng.getrandbits(64):016x}", f"req_{self.rng.getrandbits(64):016x}"
        usage = {"input_tokens": self.rng.randint(1, 50), "cache_creation_input_tokens": self.rng.randint(0, 6000),
                 "cache_read_input_tokens": self.rng.randint(0, 120_000), "output_tokens": self.rng.randint(5, 1500),
                 "service_tier": "standard"}
        blocks: list[dict[str, Any]] = [{"type": "text", "text": "Let me look. " * self.rng.randint(1, 20)}]
        if tool:
            name = self.rng.choice(TOOLS)
            blocks.append({"type": "tool_use", "id": f"toolu_{self.rng.getrandbits(64):016x}", "name": name,
                           "input": {"command": "pytest -q", "description": "run " * self.rng.randint(1, 30)}})
        out = []
        for block in blocks:  # one line per content block, as Claude Code writes them
            line = self._base("assistant", sidechain)
            line["message"] = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [block],
                               "stop_reason": None, "stop_sequence": None, "usage": usage}
            line["requestId"] = rid
            out.append(line)
        return out

    def result(self, tool_use_id: str) -> list[dict[str, Any]]:
        size = min(200_000, int(self.rng.lognormvariate(7, 1.3)))
        line = self._base("user")
        text = "x" * size
        line["message"] = {"role": "user", "content": [{"tool_use_id": tool_use_id, "type": "tool_result",
                                                        "content": text, "is_error": self.rng.random() < 0.05}]}
        line["toolUseResult"] = {"stdout": text[:2000], "stderr": "", "interrupted": False, "isImage": False}
        return [line]


def generate(root: Path, files: int, size_mb: float, seed: int = 17) -> tuple[int, int]:
    """The corpus at root/projects; (lines, bytes). Kept for the next run with the same sizes."""
    marker = root / "corpus.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        return done["lines"], done["bytes"]
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    per_file = size_mb * 1024 * 1024 / files
    total_lines = total_bytes = 0
    now = time.time()
    for i in range(files):
        project = f"proj{i % 40}"
        folder = root / "projects" / f"-home-dev-{project}"
        folder.mkdir(parents=True, exist_ok=True)
        s = _Session(rng, project, now - rng.uniform(3600 * 2, DAYS * 86400))
        written = 0
        with (folder / f"{s.sid}.jsonl").open("wb") as f:
            while written < per_file:
                batch = s.prompt()
                for _ in range(rng.randint(1, 8)):
                    step = s.assistant(tool=True, sidechain=rng.random() < 0.05)
                    batch += step
                    use = step[-1]["message"]["content"][0]
                    if use.get("type") == "tool_use":
                        batch += s.result(use["id"])
                batch += s.assistant(tool=False)
                for line in batch:
                    raw = orjson.dumps(line) + b"\n"
                    f.write(raw)
                    written += len(raw)
                    total_lines += 1
        total_bytes += written
    marker.write_text(json.dumps({"lines": total_lines, "bytes": total_bytes}))
    return total_lines, total_bytes


def bench_parse(root: Path) -> tuple[float, int]:
    start, n = time.perf_counter(), 0
    for path in sorted((root / "projects").rglob("*.jsonl")):
        with path.open("rb") as f:
            for raw in f:
                transcript_lines.parse(raw)
                n += 1
    return time.perf_counter() - start, n


def _aod(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aod.cli.main", *args], env=env, capture_output=True, text=True)


def bench_import(root: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="aod-bench-import-"))
    data = work / "data"
    data.mkdir(mode=0o700)
    config = work / "config.toml"
    config.write_text('[server]\ntcp = ""\n')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AOD_")}, "AOD_DATA_DIR": str(data),
           "AOD_CONFIG": str(config), "AOD_SOCKET": str(data / "aod.sock")}
    daemon = subprocess.Popen([sys.executable, "-m", "aod.cli.main", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if _aod("status", env=env).returncode == 0:
                break
            time.sleep(0.1)
        start = time.perf_counter()
        first = _aod("import", "claude", "--projects", str(root / "projects"), "--json", env=env)
        took = time.perf_counter() - start
        if first.returncode != 0:
            raise SystemExit(f"aod import failed: {first.stderr}")
        start = time.perf_counter()
        again = _aod("import", "claude", "--projects", str(root / "projects"), "--json", env=env)
        took_again = time.perf_counter() - start
        total = json.loads(_aod("usage", "--json", env=env).stdout)["total"]
        reports = {}
        for group in ("day", "model", "session", "block"):  # over every row: the widest question
            start = time.perf_counter()
            _aod("usage", "--by", group, "--json", env=env)
            reports[group] = time.perf_counter() - start
        return {"first": json.loads(first.stdout), "seconds": took, "again": json.loads(again.stdout),
                "seconds_again": took_again, "total": total, "db_bytes": (data / "aod.db").stat().st_size,
                "reports": reports}
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def find_ccusage(given: str | None) -> str | None:
    if given:
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aod-tests"
    installed = sorted(cache.glob("ccusage-*/node_modules/.bin/ccusage"))
    return shutil.which("ccusage") or (str(installed[-1]) if installed else None)


def bench_ccusage(binary: str, root: Path) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(root)}
    start = time.perf_counter()
    done = subprocess.run([binary, "daily", "--json", "--offline"], env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ccusage failed: {done.stderr}")
    return took, json.loads(done.stdout)["totals"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--size-mb", type=float, default=100)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--ccusage", help="the ccusage program (default: on PATH or the tests' install)")
    ap.add_argument("--no-import", action="store_true", help="only parse (and ccusage)")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.gettempdir()) / f"aod-bench-transcripts-{args.files}-{args.size_mb:g}"
    start = time.perf_counter()
    n_lines, n_bytes = generate(root, args.files, args.size_mb)
    print(f"corpus: {args.files} files, {n_bytes / 1e6:,.0f} MB, {n_lines:,} lines at {root} "
          f"({time.perf_counter() - start:.1f} s to make or find)")
    took, parsed = bench_parse(root)
    print(f"parse (aod/transcripts/lines.py, one core): {parsed / took:,.0f} lines/s, {n_bytes / 1e6 / took:,.0f} MB/s "
          f"({took:.1f} s)")
    ours = None
    if not args.no_import:
        got = bench_import(root)
        first = got["first"]
        ours = got["total"]
        print(f"aod import claude, end to end into aod serve: {got['seconds']:.1f} s, "
              f"{n_lines / got['seconds']:,.0f} lines/s; {first['sessions']} sessions, {first['events']:,} events, "
              f"{first['usage']:,} usage rows ({first['usage_duplicates']:,} duplicate lines); database "
              f"{got['db_bytes'] / 1e6:,.0f} MB")
        print(f"aod import claude again (nothing new): {got['seconds_again']:.1f} s, "
              f"{got['again']['events']} events and {got['again']['usage']} usage rows added")
        print("aod usage --json over every row (the CLI's whole run): "
              + ", ".join(f"--by {g} {t:.2f} s" for g, t in got["reports"].items()))
    binary = find_ccusage(args.ccusage)
    if binary is None:
        print("ccusage: not found (see tests/test_usage_ccusage.py), skipped")
        return
    took, theirs = bench_ccusage(binary, root)
    print(f"ccusage daily --json --offline: {took:.1f} s ({n_lines / took:,.0f} lines/s)")
    if ours is not None:
        mine = (ours["input_tokens"], ours["output_tokens"], ours["cache_creation_input_tokens"],
                ours["cache_read_input_tokens"])
        its = (theirs["inputTokens"], theirs["outputTokens"], theirs["cacheCreationTokens"], theirs["cacheReadTokens"])
        print(f"tokens (input, output, cache write, cache read): aod {mine}, ccusage {its}: "
              f"{'equal' if mine == its else 'DIFFERENT'}; cost aod ${ours['cost_usd']:,.2f}, "
              f"ccusage ${theirs['totalCost']:,.2f}")


if __name__ == "__main__":
    main()
