"""The dashboard in a real Chromium against a real `aod serve`: the board's groups, live updates
and the title, ack, send into a real tmux pane, kill, the live feed across a daemon restart (the
missed events exactly once), a reset after the database changed, stats, dark and narrow."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from aod.hook import spool
from aod.uids import uid7
from tests.conftest import hook_payload
from tests.helpers.browser import RecordedPage, login, new_page
from tests.helpers.daemon import Daemon
from tests.helpers.tmux import TmuxServer
from tests.helpers.waiting import wait_for

LIVE_MS = 1000  # a change posted after load shows within this, without a reload


def payload(fixture: str, agent_session: str, cwd: Path, **extra: Any) -> dict[str, Any]:
    p = hook_payload(fixture)
    cwd.mkdir(exist_ok=True)
    return {**p, "session_id": agent_session, "cwd": str(cwd), **extra}


def hook(d: Daemon, fixture: str, agent_session: str, cwd: Path, session: str | None = None, **extra: Any) -> None:
    envelope: dict[str, Any] = {"agent": "claude-code", "payload": payload(fixture, agent_session, cwd, **extra)}
    if session:
        envelope["session"] = session
    reply = d.post("/v1/events", envelope)
    assert reply.status == 202 and reply.body["accepted"] == 1, reply.body


def until(page: RecordedPage, js: str, timeout: float = 10.0) -> Any:
    """Polls `js` (an expression) from the test: the page's strict CSP forbids the string eval that
    Playwright's wait_for_function uses in the page."""
    return wait_for(lambda: page.evaluate(js), timeout=timeout, interval=0.02, message=js)


def pumped(page: RecordedPage) -> bool:
    page.wait_for_timeout(20)
    return True


def card(page: RecordedPage, group: str, sid: str) -> Any:
    return page.locator(f'section[data-group="{group}"] article[data-id="{sid}"]')


def open_escalation(d: Daemon, sid: str) -> dict[str, Any]:
    return wait_for(lambda: next((e for e in d.get(f"/v1/escalations?session={sid}").body["items"]
                                  if not e["acked_at"]), None), message=f"an open escalation of {sid}")


def test_board_groups_live_title_ack_keys_and_filters(daemon: Daemon, page: RecordedPage, tmp_path: Path) -> None:
    d = daemon
    hook(d, "PermissionRequest", "a-needy", tmp_path / "needy")
    hook(d, "PreToolUse", "a-busy", tmp_path / "busy")
    hook(d, "SessionStart", "a-calm", tmp_path / "calm")
    hook(d, "SessionStart", "a-gone", tmp_path / "gone")
    hook(d, "SessionEnd", "a-gone", tmp_path / "gone")
    hook(d, "SessionStart", "a-red", tmp_path / "red")
    pr = {"url": "https://github.com/o/red/pull/4", "number": 4, "state": "open", "draft": False,
          "review_decision": None, "mergeability": "unknown", "head_sha": "abc", "title": "Red",
          "checks": [{"name": "unit", "status": "failed", "url": "https://ci/u"}]}
    assert d.post("/v1/sessions/red-1/pr", pr).status == 200
    statuses = {s["id"]: s["status"] for s in d.get("/v1/sessions?limit=50").body["items"]}
    assert statuses == {"needy-1": "needs_input", "busy-1": "working", "calm-1": "idle", "gone-1": "exited",
                        "red-1": "ci_failed"}

    login(page, d)
    expect(page.page).to_have_title("(2) aod")
    for group, sid in (("needs_input", "needy-1"), ("ci_failed", "red-1"), ("working", "busy-1"),
                       ("waiting", "calm-1"), ("ended", "gone-1")):
        card(page, group, sid).wait_for()
    assert page.locator("article.card").count() == 5
    assert page.locator('[data-count="needs_input"]').inner_text() == "1"
    # The PR and its checks come from the session's detail, read for the visible cards that have one.
    wait_for(lambda: "PR #4 open" in card(page, "ci_failed", "red-1").inner_text(), message="the PR on the card")
    assert "1 checks, 1 failing" in card(page, "ci_failed", "red-1").inner_text()
    assert "PermissionRequest Bash" in card(page, "needs_input", "needy-1").inner_text()
    assert page.locator("#conn").get_attribute("data-state") == "live"
    page.screenshot("dashboard-board")

    # A question from the working agent, posted after load: its card moves and the title counts it.
    started = time.monotonic()
    hook(d, "PermissionRequest", "a-busy", tmp_path / "busy")
    expect(page.page).to_have_title("(3) aod", timeout=LIVE_MS)
    card(page, "needs_input", "busy-1").wait_for(timeout=LIVE_MS)
    assert time.monotonic() - started < LIVE_MS / 1000 + 0.5
    assert card(page, "working", "busy-1").count() == 0
    assert "%3E3%3C%2Ftext%3E" in page.locator("#favicon").get_attribute("href")  # ">3</text>", drawn

    # j focuses the first card (the longest waiting), a acks its escalation; the button acks another.
    needy = open_escalation(d, "needy-1")
    busy = open_escalation(d, "busy-1")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.dataset.id") == "needy-1"
    page.keyboard.press("a")
    wait_for(lambda: d.get("/v1/escalations?session=needy-1").body["items"][0]["acked_at"], message="the key's ack")
    page.get_by_label(f"acknowledge escalation {busy['id']}").click()
    wait_for(lambda: d.get("/v1/escalations?session=busy-1").body["items"][0]["acked_at"], message="the button's ack")
    page.get_by_label(f"acknowledge escalation {needy['id']}").wait_for(state="detached", timeout=LIVE_MS)

    # / focuses the filter; typing narrows the board; the project select narrows it too.
    page.keyboard.press("Escape")
    page.locator("body").press("/")
    assert page.evaluate("document.activeElement.id") == "filter"
    page.keyboard.type("calm")
    wait_for(lambda: page.locator("article.card").count() == 1, message="the text filter")
    page.fill("#filter", "")
    page.get_by_label("filter by project").select_option("red")
    # Read in one evaluation: the board may redraw between two locator calls.
    until(page, "[...document.querySelectorAll('article.card')].map(c => c.dataset.id).join() === 'red-1'")
    page.get_by_label("filter by project").select_option("")

    # Enter opens the focused card's session page.
    page.locator('article[data-id="calm-1"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/sessions/calm-1")
    page.locator("section.head h1").wait_for()
    assert "calm" in page.locator("section.head h1").inner_text()
    page.assert_no_errors()


def test_session_page_timeline_send_waiting_input_and_kill(aod: Daemon, tmux: TmuxServer, repo: Path,
                                                            page: RecordedPage) -> None:
    spawned = aod.post("/v1/sessions", {"project": str(repo), "command": ["cat"], "name": "typist"})
    assert spawned.status == 201, spawned.body
    sid, pane = spawned.body["id"], spawned.body["runtime_handle"]
    hook(aod, "PreToolUse", "a-typist", repo, session=sid)
    older = [{"agent": "claude-code", "session": sid,
              "payload": payload("PostToolUse", "a-typist", repo, tool_use_id=f"toolu_old_{n}")} for n in range(55)]
    assert aod.post("/v1/events", {"events": older}).body["accepted"] == 55

    base = login(page, aod)
    page.goto(f"{base}/sessions/{sid}")  # a deep link, as after a reload
    # The newest 50 first; "older" pages back with the API's cursor.
    page.locator("ol.timeline li").first.wait_for()
    assert page.locator("ol.timeline li").count() == 50
    page.get_by_label("load older events").click()
    page.locator('li[data-kind="PreToolUse"]').wait_for()
    assert page.locator("ol.timeline li").count() == 56
    assert page.get_by_label("load older events").is_hidden()
    head = page.locator("section.head").inner_text()
    assert "shop" in head and str(repo) in head and "tmux " + pane in head and "alive\nyes" in head
    page.locator('li[data-kind="PreToolUse"] summary').click()
    wait_for(lambda: '"npm test"' in page.locator('li[data-kind="PreToolUse"] pre').inner_text(), message="the payload")

    hook(aod, "Stop", "a-typist", repo, session=sid)
    page.locator('li[data-kind="Stop"]').wait_for(timeout=LIVE_MS)

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_label("message to the agent").fill("hello from the board")
    page.get_by_label("send message").click()
    wait_for(lambda: "hello from the board" in tmux.capture(pane), message="the message in the pane")
    assert dialogs == []

    # The agent asks something: sending asks first, then forces.
    hook(aod, "PermissionRequest", "a-typist", repo, session=sid)
    wait_for(lambda: aod.get(f"/v1/sessions/{sid}").body["activity"] == "waiting_input", message="waiting")
    page.get_by_label("message to the agent").fill("answer anyway")
    page.get_by_label("send message").click()
    # Sync Playwright runs the dialog handler only inside its own calls: keep making one while waiting.
    wait_for(lambda: pumped(page) and "answer anyway" in tmux.capture(pane), message="the forced message in the pane")
    assert len(dialogs) == 1 and "waiting for an answer" in dialogs[0]
    # The question paged the human: its Ack is on the page, and works.
    escalation = open_escalation(aod, sid)
    page.get_by_label(f"acknowledge escalation {escalation['id']}").click()
    page.locator(f'li[data-escalation="{escalation["id"]}"] .acked').wait_for(timeout=LIVE_MS)
    assert aod.get(f"/v1/escalations?session={sid}").body["items"][0]["acked_at"]
    # A PR observed after load shows with its checks, live.
    pr = {"url": "https://github.com/o/shop/pull/9", "number": 9, "state": "open", "draft": False,
          "review_decision": "changes_requested", "mergeability": "unknown", "head_sha": "abc", "title": "Shop",
          "checks": [{"name": "unit", "status": "failed", "url": "https://ci/u"}]}
    assert aod.post(f"/v1/sessions/{sid}/pr", pr).status == 200
    page.locator("section.prs li.check").wait_for(timeout=LIVE_MS)
    prs = page.locator("section.prs").inner_text()
    assert "#9 Shop" in prs and "review changes_requested" in prs and "unit: failed" in prs
    assert "null" not in page.locator("section.escs").inner_text()
    page.screenshot("dashboard-session")

    page.get_by_label("kill session").click()
    wait_for(lambda: pumped(page) and aod.get(f"/v1/sessions/{sid}").body["status"] == "killed", message="killed")
    assert len(dialogs) == 2 and sid in dialogs[1]
    page.locator("section.head .status.s-killed").wait_for(timeout=LIVE_MS)
    # The one 409 is the refusal the confirmation answered; Chromium logs every failed fetch.
    assert [e for e in page.errors if "409 (Conflict)" not in e] == []
    assert sum("409 (Conflict)" in e for e in page.errors) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spool_event(data_dir: Path, cwd: Path, n: int) -> None:
    ns = time.time_ns()
    uid = uid7(ns)
    body = {"uid": uid, "agent": "claude-code", "occurred_at": ns,
            "payload": payload("PreToolUse", "a-spool", cwd, tool_use_id=f"toolu_spool_{n}", tool_name=f"Spooled{n}")}
    spool(json.dumps(body).encode(), uid, ns, data_dir)


def _feed_event_ids(page: RecordedPage) -> list[str]:
    return page.eval_on_selector_all('ol.feed li[data-entity="event"]', "els => els.map(e => e.dataset.id)")


def test_feed_resumes_after_a_restart_exactly_once_and_a_reset_rereads(
        data_dir: Path, aod_env: dict[str, str], page: RecordedPage, tmp_path: Path) -> None:
    port = _free_port()
    args = ("--tcp", f"127.0.0.1:{port}")  # the same address after each restart: the page keeps its URL
    d = Daemon(data_dir, aod_env).start(args=args)
    try:
        base = login(page, d)
        page.get_by_role("link", name="Live feed").click()
        until(page, "document.querySelector('#conn').dataset.state === 'live'")
        hook(d, "PreToolUse", "a-spool", tmp_path / "spooly")
        wait_for(lambda: len(_feed_event_ids(page)) == 1, message="the first event in the feed")

        d.stop()
        until(page, "document.querySelector('#conn').dataset.state === 'reconnecting'")
        for n in range(3):
            _spool_event(data_dir, tmp_path / "spooly", n)
        until(page, "document.querySelector('#conn').textContent.startsWith('offline since ')")
        page.screenshot("dashboard-feed-offline")
        d.start(args=args)
        stored = wait_for(lambda: [str(e["id"]) for e in d.get("/v1/events?limit=50").body["items"]]
                          if len(d.get("/v1/events?limit=50").body["items"]) == 4 else None, message="the spool ingested")
        wait_for(lambda: len(_feed_event_ids(page)) >= 4, timeout=10, message="the missed events in the feed")
        page.wait_for_timeout(500)  # anything shown twice would have arrived by now
        assert sorted(_feed_event_ids(page)) == sorted(stored)
        assert page.locator("#conn").get_attribute("data-state") == "live"
        tools = page.locator('ol.feed li[data-entity="event"]').all_inner_texts()
        assert sum("Spooled1" in t for t in tools) == 1
        page.get_by_label("filter by tool").fill("Spooled2")
        wait_for(lambda: len(_feed_event_ids(page)) == 1, message="the tool filter")
        page.get_by_label("pause the feed").click()
        hook(d, "Stop", "a-spool", tmp_path / "spooly")
        until(page, "document.querySelector('.feedview .note').textContent.includes('1 new')")
        page.screenshot("dashboard-feed")

        # Another database under the same address: the stream answers `reset`, the board re-reads.
        page.get_by_role("link", name="Board", exact=True).click()
        card(page, "working", "spooly-1").wait_for()
        d.stop()
        for name in ("aod.db", "aod.db-wal", "aod.db-shm"):
            (data_dir / name).unlink(missing_ok=True)
        d.start(args=args)
        hook(d, "PreToolUse", "a-fresh", tmp_path / "fresh")
        card(page, "working", "fresh-1").wait_for(timeout=10000)
        wait_for(lambda: page.locator('article[data-id="spooly-1"]').count() == 0, message="the old snapshot gone")
        assert page.url == f"{base}/"
        # While the daemon was down Chromium logged each refused connection; nothing else went wrong.
        assert [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e] == []

        # A new token under the same address: the page's cookie is refused, and the page says so.
        d.stop()
        (data_dir / "token").write_text("another-token-" + "x" * 30 + "\n")
        d.start(args=args)
        until(page, "document.querySelector('#conn').dataset.state === 'unauthorized'")
        assert "aod dashboard" in page.locator("#conn").inner_text()
        assert any("401 (Unauthorized)" in e for e in page.errors)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


def test_stats_view_and_dark_narrow_layout(daemon: Daemon, browser: Any, tmp_path: Path) -> None:
    hook(daemon, "PreToolUse", "a-st", tmp_path / "st")
    hook(daemon, "PostToolUse", "a-st", tmp_path / "st")
    with new_page(browser, color_scheme="dark", viewport={"width": 480, "height": 800}) as page:
        base = login(page, daemon)
        card(page, "working", "st-1").wait_for()
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(22, 24, 28)"
        # Narrow: one column, nothing wider than the window.
        assert page.evaluate("document.documentElement.scrollWidth") <= 480
        page.screenshot("dashboard-board-dark-narrow")
        page.goto(f"{base}/stats")
        # Sixty minutes drawn; the current one, last, holds the two events posted above.
        heights = until(page, "[...document.querySelectorAll('svg.chart')].length === 2 && "
                        "[...document.querySelector('svg.chart').querySelectorAll('rect')].map(r => +r.getAttribute('height'))")
        assert len(heights) == 60 and heights[-1] > 0 and heights[:-1] == [0] * 59
        tools = page.locator(".stats svg.chart").nth(1)
        assert tools.get_attribute("aria-label") == "tool latency and failure rate"
        assert tools.locator("text").first.text_content() == "Bash"
        page.screenshot("dashboard-stats")
        page.assert_no_errors()


def test_board_pages_a_big_group_with_the_api_cursor(daemon: Daemon, page: RecordedPage, tmp_path: Path) -> None:
    starts = [{"agent": "claude-code", "payload": payload("SessionStart", f"a-{n}", tmp_path / "many")}
              for n in range(130)]
    assert daemon.post("/v1/events", {"events": starts}).body["accepted"] == 130
    login(page, daemon)
    waiting = page.locator('section[data-group="waiting"]')
    waiting.locator("article").first.wait_for()
    assert waiting.locator("article").count() == 30 and waiting.locator(".count").inner_text() == "130"
    more = page.get_by_label("show more Idle / PR waiting")
    more.click()  # 60 more drawn, and the API's next page (past the first 100) read with its cursor
    wait_for(lambda: waiting.locator("article").count() == 90, message="the second helping")
    more.click()
    wait_for(lambda: waiting.locator("article").count() == 130, message="the second page")
    assert more.count() == 0
    ids = page.evaluate("[...document.querySelectorAll('section[data-group=waiting] article')].map(a => a.dataset.id)")
    assert sorted(ids) == sorted(f"many-{n}" for n in range(1, 131))
    page.assert_no_errors()
