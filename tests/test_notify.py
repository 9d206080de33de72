"""Notifiers with real programs and a real HTTP server, and routing through a real daemon."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aod.config import NotifierConfig
from aod.notify.notifiers import NotifyError, send
from aod.notify.worker import backoff
from tests.helpers.agent_world import FAST, World
from tests.helpers.waiting import wait_for

PAGE: dict[str, Any] = {
    "escalation": {"id": 3, "session_id": "widget-1", "reaction": "ci-failed", "priority": "urgent",
                   "message": "CI is failing", "created_at": "2026-01-01T00:00:00.000000Z"},
    "session": {"id": "widget-1"},
    "delivery": {"id": 5, "notifier": "n", "attempt": 1},
}


async def _send(notifier: NotifierConfig, page: dict[str, Any] = PAGE) -> None:
    async with aiohttp.ClientSession() as http:
        await send(notifier, page, http)


async def test_command_gets_the_page_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "page.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    await _send(NotifierConfig(name="n", type="command", command=(sys.executable, "-c", script)))
    assert json.loads(out.read_text()) == PAGE


async def test_command_failure_and_timeout_are_reported() -> None:
    failing = NotifierConfig(name="n", type="command", command=(sys.executable, "-c", "import sys; sys.exit('pager down')"))
    with pytest.raises(NotifyError, match="exited with 1: pager down"):
        await _send(failing)
    slow = NotifierConfig(name="n", type="command", command=("sleep", "30"), timeout=0.3)
    with pytest.raises(NotifyError, match=r"timed out after 0\.3s"):
        await _send(slow)
    missing = NotifierConfig(name="n", type="command", command=("/nonexistent/pager",))
    with pytest.raises(NotifyError, match="cannot run /nonexistent/pager"):
        await _send(missing)


async def test_webhook_posts_json_with_an_idempotency_key() -> None:
    seen: list[tuple[Any, str | None]] = []
    answer = [500]

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.json(), request.headers.get("Idempotency-Key")))
        return web.Response(status=answer[0], text="try later")

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        notifier = NotifierConfig(name="n", type="webhook", url=f"http://127.0.0.1:{port}/hook")
        with pytest.raises(NotifyError, match="HTTP 500: try later"):
            await _send(notifier)
        answer[0] = 204
        await _send(notifier)
        assert seen == [(PAGE, "aod-delivery-5"), (PAGE, "aod-delivery-5")]
    finally:
        await runner.cleanup()
    with pytest.raises(NotifyError, match="ClientConnectorError"):
        await _send(notifier)


async def test_desktop_without_notify_send_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no notify-send, no osascript
    with pytest.raises(NotifyError, match="unavailable: neither notify-send nor osascript") as err:
        await _send(NotifierConfig(name="d", type="desktop"))
    assert err.value.permanent


async def test_desktop_runs_notify_send_with_the_urgency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "args"
    fake = tmp_path / "notify-send"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{out}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    await _send(NotifierConfig(name="d", type="desktop"))
    assert out.read_text().splitlines() == ["--app-name=aod", "--urgency=critical", "aod: ci-failed in widget-1",
                                            "CI is failing"]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(5.0, n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(5.0, 40) == 3600.0


# --- through the daemon ---------------------------------------------------------------------------


def test_routing_by_priority_and_unavailable_desktop_is_recorded(world: World) -> None:
    pages = world.root / "pages"
    pages.mkdir()
    script = ("import json, sys, pathlib; p = json.load(sys.stdin); "
              f"pathlib.Path({str(pages)!r}, str(p['delivery']['id'])).write_text(json.dumps(p))")
    config = FAST + f"""
[notifiers.pager]
type = "command"
command = [{json.dumps(sys.executable)}, "-c", {json.dumps(script)}]
[notifiers.desk]
type = "desktop"
[notifiers.info-only]
type = "command"
command = ["false"]
[routing]
urgent = ["pager", "desk"]
info = ["info-only"]
"""
    # No notify-send or osascript on this PATH: the desktop notifier cannot work.
    bare = world.root / "bare-bin"
    bare.mkdir()
    (bare / "gh").symlink_to(world.root / "bin" / "gh")
    (bare / "git").symlink_to("/usr/bin/git")
    d = world.daemon(config, env={"PATH": str(bare)})
    sid = world.adopt_session(d)
    waiting = {"agent": "claude-code", "payload": {
        "session_id": "agent-1", "hook_event_name": "Notification", "notification_type": "permission_prompt",
        "message": "Claude needs your permission to use Bash", "cwd": str(world.repo)}}
    assert d.post("/v1/events", waiting).status == 202

    # needs-input is urgent by default: one escalation, one delivery per urgent notifier.
    wait_for(lambda: world.query("SELECT count(*) FROM deliveries WHERE status != 'pending'")[0][0] == 2,
             message="both deliveries settled")
    (escalation,) = d.get(f"/v1/sessions/{sid}").body["escalations"]
    assert (escalation["reaction"], escalation["priority"]) == ("needs-input", "urgent")
    outcome = {x["notifier"]: x for x in escalation["deliveries"]}
    assert set(outcome) == {"pager", "desk"}
    assert (outcome["pager"]["status"], outcome["pager"]["attempts"]) == ("sent", 1)
    assert outcome["desk"]["status"] == "failed" and "unavailable" in outcome["desk"]["last_error"]
    (page,) = [json.loads(p.read_text()) for p in pages.iterdir()]
    assert page["escalation"]["id"] == escalation["id"] and page["session"]["id"] == sid
    assert page["escalation"]["message"].startswith("The agent is waiting for your input.")
    d.stop()
