"""The dashboard's cost panel in a real Chromium against a real daemon tailing a real transcript:
today's spend, per project, the current 5-hour block's burn rate, and a new message shown live."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import RecordedPage, login
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for
from tests.test_transcripts_daemon import HOOKS

SID = "5e1f0c2a-7b3d-4c8e-9f10-2a3b4c5d6e7f"


def _message(at: datetime, n: int, inp: int, out: int) -> bytes:
    line: dict[str, Any] = {
        "parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/x", "sessionId": SID,
        "version": "2.0.14", "gitBranch": "main", "type": "assistant", "uuid": f"u-{n}", "requestId": f"req_{n}",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "message": {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "ok"}],
                    "usage": {"input_tokens": inp, "output_tokens": out, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0}}}
    return json.dumps(line).encode() + b"\n"


def _text(page: RecordedPage, selector: str, attr: str) -> str | None:
    found = page.locator(selector)
    return found.get_attribute(attr) if found.count() else None


def test_cost_panel_shows_today_per_project_and_the_burn_rate_live(
        daemon: Daemon, page: RecordedPage, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    transcript = tmp_path / "claude" / "projects" / "-shop" / f"{SID}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(_message(now - timedelta(seconds=90), 1, 1000, 2000))  # $0.003 + $0.03
    cwd = tmp_path / "shop"
    cwd.mkdir()
    payload = {**json.loads((HOOKS / "SessionStart.json").read_text()), "session_id": SID,
               "transcript_path": str(transcript), "cwd": str(cwd)}
    assert daemon.post("/v1/hooks/claude-code", payload).status == 202
    wait_for(lambda: daemon.get("/v1/usage?group_by=session").body["total"]["messages"] == 1, timeout=20)

    base = login(page, daemon)
    page.goto(f"{base}/stats")
    wait_for(lambda: _text(page, "[data-today]", "data-today") == "0.033000", message="today's spend")
    assert page.locator("[data-panel=cost] [data-today]").inner_text() == "$0.03"
    (project,) = daemon.get("/v1/usage?group_by=project").body["items"]
    row = page.locator(f'tr[data-project="{project["key"]}"]')
    assert row.locator("td").nth(1).inner_text() == "$0.03"
    assert row.locator("td").nth(2).inner_text().replace(",", "").replace(".", "").replace("\u202f", "") == "3000"
    # One message: a block with no burn rate yet.
    assert _text(page, "[data-burn]", "data-burn") == ""

    # A minute later, another message: the panel follows without a reload.
    with transcript.open("ab") as f:
        f.write(_message(now - timedelta(seconds=30), 2, 0, 1000))  # $0.015
    wait_for(lambda: _text(page, "[data-today]", "data-today") == "0.048000", message="the new message shown live")
    burn = _text(page, "[data-burn]", "data-burn")
    assert burn is not None and float(burn) == pytest.approx(0.048 * 60)  # over the block's one minute
    assert page.locator("[data-burn]").inner_text() == "$2.88/h"
    panel = page.locator("[data-panel=cost]").inner_text()
    assert "null" not in panel and "undefined" not in panel and "NaN" not in panel, panel
    assert not page.page_errors and not page.console_errors
    page.screenshot("dashboard-cost")

    # The session's page has its cost, kept current by the stream's `usage` entity.
    (session,) = daemon.get("/v1/usage?group_by=session").body["items"]
    page.goto(f"{base}/sessions/{session['key']}")
    cost = page.locator("dt:text-is('cost') + dd")
    wait_for(lambda: cost.count() and cost.inner_text().startswith("$0.05 · 4,000 tokens in 2 messages"),
             message="the session's cost")
    with transcript.open("ab") as f:
        f.write(_message(now - timedelta(seconds=10), 3, 0, 1000))  # $0.015 more
    wait_for(lambda: cost.inner_text().startswith("$0.06 · 5,000 tokens in 3 messages"), message="the cost live")
    assert not page.page_errors and not page.console_errors
