"""Live tailing with a real daemon: appends while it runs, a partial last line, a subagent's file, a
rewrite, and a SIGKILL between appends; GET /v1/usage over what it stored."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_aod
from tests.helpers.daemon import Daemon, SocketClient
from tests.helpers.waiting import wait_for
from tests.test_transcripts import SHOP, SUBAGENT

HOOKS = Path(__file__).parent / "fixtures" / "claude-code"
SID = "7d1c6a52-5d0e-4f63-9b44-0c1f8a2e6b10"
# One more message, an hour and a half after the others: in UTC+14 it is the next day already.
LATE = {**json.loads(SHOP.read_bytes().splitlines()[-1]), "uuid": "u-11", "timestamp": "2025-10-01T10:30:00.000Z",
        "requestId": "req_01E"}
LATE["message"] = {**LATE["message"], "id": "msg_01E"}


def _session_usage(d: Daemon) -> dict[str, Any] | None:
    reply = d.get("/v1/usage?group_by=session")
    assert reply.status == 200, reply.body
    items = reply.body["items"]
    return items[0] if items else None


def _messages(d: Daemon, n: int) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(lambda: (u := _session_usage(d)) is not None and u["messages"] == n and u,
                                     timeout=20, message=f"{n} messages stored")
    return found


def test_live_tailing_counts_every_message_once_across_appends_a_rewrite_and_sigkill(
        data_dir: Path, aod_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "claude" / "projects" / "-home-dev-shop"
    folder.mkdir(parents=True)
    transcript = folder / f"{SID}.jsonl"
    lines = SHOP.read_bytes().splitlines(keepends=True)  # 12 lines; msg_01A is on lines 3 and 4
    transcript.write_bytes(b"".join(lines[:4]) + lines[4][:40])  # the 5th still being written
    d = Daemon(data_dir, {**aod_env, "TZ": "Pacific/Kiritimati"}).start()
    try:
        payload = {**json.loads((HOOKS / "SessionStart.json").read_text()), "session_id": SID,
                   "transcript_path": str(transcript), "cwd": str(tmp_path)}
        assert d.post("/v1/hooks/claude-code", payload).status == 202
        first = _messages(d, 1)
        assert (first["input_tokens"], first["output_tokens"], first["cache_read_input_tokens"]) == (3, 12, 10200)
        with transcript.open("ab") as f:  # the cut line ends, the subagent's lines follow
            f.write(lines[4][40:] + b"".join(lines[5:8]))
        _messages(d, 3)
        d.kill()
        with transcript.open("ab") as f:  # written while no daemon runs
            f.write(b"".join(lines[8:]))
        d.start()
        _messages(d, 6)
        # A subagent's own file under <session>/subagents/ counts for the session, as a sidechain.
        (folder / SID / "subagents").mkdir(parents=True)
        (folder / SID / "subagents" / SUBAGENT.name).write_bytes(SUBAGENT.read_bytes())
        _messages(d, 7)
        # Rewritten (another inode, the same lines and one more): only the new one counts.
        fresh = folder / "rewrite.tmp"
        fresh.write_bytes(b"".join(lines) + json.dumps(LATE).encode() + b"\n")
        os.replace(fresh, transcript)
        done = _messages(d, 8)
        # ccusage daily --offline on the fixture files, plus the late message (2 + 88 + 16,812 cached).
        assert (done["input_tokens"], done["output_tokens"]) == (2326 + 2, 795 + 88)
        assert (done["cache_creation_input_tokens"], done["cache_read_input_tokens"]) == (9633, 59636 + 16812)
        late_cost = (2 * 3 + 88 * 15 + 16812 * 0.3) / 1e6
        assert done["cost_usd"] == pytest.approx(0.05879105 + late_cost)
        assert (done["sidechain_messages"], done["sidechain_cost_usd"]) == (2, pytest.approx(0.00706325))
        # Days are the daemon's local calendar: 10:30Z is the next day in UTC+14.
        days = d.get("/v1/usage?group_by=day").body
        assert [(i["key"], i["messages"]) for i in days["items"]] == [("2025-10-01", 7), ("2025-10-02", 1)]
        assert days["total"]["messages"] == 8 and days["total"]["cost_usd"] == pytest.approx(done["cost_usd"])
        window = d.get("/v1/usage?group_by=model&since=2025-10-02&until=2025-10-02").body
        assert [(i["key"], i["messages"]) for i in window["items"]] == [("claude-sonnet-4-5-20250929", 1)]
        blocks = d.get("/v1/usage?group_by=block").body["items"]
        assert [(b["key"], b["end"], b["messages"], b["active"]) for b in blocks] == [
            ("2025-10-01T09:00:00.000000Z", "2025-10-01T14:00:00.000000Z", 8, False)]
        # aod usage: the same figures as a table, with a total row.
        shown = run_aod("usage", env={**aod_env, "AOD_SOCKET": str(d.socket), "COLUMNS": "250"})
        assert shown.returncode == 0, shown.stderr
        rows = [line.split() for line in shown.stdout.splitlines()]
        assert rows[0][:2] == ["date", "models"] and [r[0] for r in rows[1:]] == ["2025-10-01", "2025-10-02", "Total"]
        # The total row ends: total tokens, cost, the subagents' share.
        assert rows[-1][-3:] == [f"{2328 + 883 + 9633 + 76448:,}", "$0.07", "$0.01"]
        # The session object and aod show carry the same totals, kept with the rows.
        totals = d.session(done["key"])["usage"]
        assert (totals["messages"], totals["cost_usd"]) == (8, pytest.approx(done["cost_usd"]))
        assert totals["models"] == {"claude-sonnet-4-5-20250929": 5, "claude-haiku-4-5-20251001": 2, "<synthetic>": 1}
        (listed,) = d.get("/v1/sessions").body["items"]
        assert listed["id"] == done["key"] and listed["usage"] == totals
        show = run_aod("show", done["key"], env={**aod_env, "AOD_SOCKET": str(d.socket), "COLUMNS": "250"})
        assert f"$0.07 for {2328 + 883 + 9633 + 76448:,} tokens in 8 messages" in show.stdout, show.stdout
        assert "subagents: $0.01 in 2 messages" in show.stdout
        # SIGTERM while the transcripts are watched: out well within the 5 s a stop may take.
        began = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - began < 3.0
    finally:
        d.stop()


def test_bad_usage_parameters_are_a_400_that_names_them(api: SocketClient) -> None:
    for query, named in [("group_by=week", "group_by"), ("since=yesterday", "since"),
                         ("since=2025-10-02&until=2025-10-01", "since")]:
        reply = api.get(f"/v1/usage?{query}")
        assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter", query
        assert reply.body["error"]["message"].startswith(named), reply.body
