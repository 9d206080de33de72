"""aod's daily usage agrees with ccusage's (`ccusage daily --json --offline`) on the same transcripts:
tokens exactly, cost to the cent, the same models per day.

ccusage is installed with npm into a cache directory the first time (18.0.11: the last release
that is plain JavaScript; later ones need a native package the registry may not have for this
platform). The test skips, saying why, where npm is missing or the install fails (offline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for
from tests.test_transcripts import FIXTURES
from tests.test_transcripts_daemon import HOOKS

CCUSAGE_VERSION = "18.0.11"
TZ = "Pacific/Kiritimati"  # UTC+14: the fixtures' afternoons in UTC are the next day there


def ccusage() -> Path:
    found = os.environ.get("AOD_CCUSAGE") or shutil.which("ccusage")
    if found:
        return Path(found)
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (scripts/test installs it): cannot install ccusage")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aod-tests" / f"ccusage-{CCUSAGE_VERSION}"
    binary = cache / "node_modules" / ".bin" / "ccusage"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--silent",
                               f"ccusage@{CCUSAGE_VERSION}"], capture_output=True, text=True, timeout=240)
        if done.returncode != 0 or not binary.exists():
            pytest.skip(f"npm could not install ccusage@{CCUSAGE_VERSION} (offline?): {done.stderr.strip()[-300:]}")
    return binary


def test_daily_totals_equal_ccusage_to_the_cent(data_dir: Path, aod_env: dict[str, str], tmp_path: Path) -> None:
    binary = ccusage()
    home = tmp_path / "claude"
    shutil.copytree(FIXTURES, home / "projects")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home), "TZ": TZ}
    done = subprocess.run([str(binary), "daily", "--json", "--offline"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    theirs = {d["date"]: d for d in json.loads(done.stdout)["daily"]}

    d = Daemon(data_dir, {**aod_env, "TZ": TZ}).start()
    try:
        sessions = sorted(home.glob("projects/*/*.jsonl"))
        for transcript in sessions:
            payload = {**json.loads((HOOKS / "SessionStart.json").read_text()), "session_id": transcript.stem,
                       "transcript_path": str(transcript), "cwd": str(tmp_path)}
            assert d.post("/v1/hooks/claude-code", payload).status == 202
        expected = sum(day["totalTokens"] for day in theirs.values())

        def stored() -> dict[str, dict[str, object]] | None:
            body = d.get("/v1/usage?group_by=day").body
            t = body["total"]
            total = (t["input_tokens"] + t["output_tokens"] + t["cache_creation_input_tokens"]
                     + t["cache_read_input_tokens"])
            return {i["key"]: i for i in body["items"]} if total == expected else None

        ours = wait_for(stored, timeout=20, message="every transcript read")
    finally:
        d.stop()
    assert sorted(ours) == sorted(theirs) and len(theirs) == 2, (sorted(ours), sorted(theirs))
    for day, their in theirs.items():
        our = ours[day]
        assert (our["input_tokens"], our["output_tokens"], our["cache_creation_input_tokens"],
                our["cache_read_input_tokens"]) == (their["inputTokens"], their["outputTokens"],
                                                    their["cacheCreationTokens"], their["cacheReadTokens"]), day
        assert round(float(our["cost_usd"]), 2) == round(their["totalCost"], 2), day  # type: ignore[arg-type]
        assert abs(float(our["cost_usd"]) - their["totalCost"]) < 1e-9, day  # type: ignore[arg-type]
        # ccusage leaves out Claude Code's own placeholder replies; aod lists them (at no cost).
        assert set(our["models"]) - {"<synthetic>"} == set(their["modelsUsed"]), day  # type: ignore[arg-type]
