"""A session's last error (a StopFailure's `error`) and when it happened, through a real daemon:
the API object, the stream's change_log row, `aod sessions` and `aod show`."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from typing import Any

import pytest

from aod.timefmt import iso_from_ns
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import SocketClient

S = 1_000_000_000  # ns


def post(daemon: SocketClient, body: dict[str, Any], at: int) -> None:
    reply = daemon.post("/v1/events", {"agent": "claude-code", "payload": body, "occurred_at": at})
    assert reply.status == 202, reply.body


def stop_failure(error: str, prompt_id: str = "p-1") -> dict[str, Any]:
    # Another turn has another prompt_id (the same payload within 5 s would be a duplicate).
    return hook_payload("Stop", hook_event_name="StopFailure", error=error, background_tasks=[], prompt_id=prompt_id)


def last_logged_session(daemon: SocketClient) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True)) as c:
        (data,) = c.execute("SELECT data FROM change_log WHERE entity = 'session' ORDER BY seq DESC LIMIT 1").fetchone()
    return json.loads(data)


def error_line(show: str) -> list[str]:
    return [line for line in show.splitlines() if re.match(r"error\s", line)]


@pytest.fixture
def daemon(api: SocketClient) -> SocketClient:
    """These tests need no background job: the API served in-process (tests/helpers/inproc.py)."""
    return api


def test_the_last_error_shows_until_the_agent_moves_on(daemon: SocketClient) -> None:
    now = time.time_ns()
    post(daemon, hook_payload("SessionStart"), now - 300 * S)
    failed_at = now - 185 * S
    post(daemon, stop_failure("rate_limit"), failed_at)
    sid = daemon.get("/v1/sessions").body["items"][0]["id"]

    s = daemon.get(f"/v1/sessions/{sid}").body
    assert (s["status"], s["error"], s["error_at"]) == ("idle", "rate_limit", iso_from_ns(failed_at))
    show = run_aod("show", sid, env=daemon.env)
    assert show.returncode == 0, show.stderr
    assert [re.sub(r"\s+", " ", line) for line in error_line(show.stdout)] == ["error rate_limit (3m ago)"]
    listing = run_aod("sessions", env=daemon.env).stdout
    assert "ERROR" in listing.splitlines()[0] and "rate_limit (3m ago)" in listing

    # A notification that asks nothing is no change of activity: the error stays, and its time.
    post(daemon, hook_payload("Notification.idle"), now - 120 * S)
    assert daemon.get(f"/v1/sessions/{sid}").body["error_at"] == iso_from_ns(failed_at)

    # The same error again is a new error: its time moves, and the stream hears of it.
    again_at = now - 65 * S
    post(daemon, stop_failure("rate_limit", prompt_id="p-2"), again_at)
    assert daemon.get(f"/v1/sessions/{sid}").body["error_at"] == iso_from_ns(again_at)
    logged = last_logged_session(daemon)
    assert (logged["id"], logged["error"], logged["error_at"]) == (sid, "rate_limit", iso_from_ns(again_at))
    assert "error rate_limit (1m ago)" in [re.sub(r"\s+", " ", x) for x in error_line(run_aod("show", sid, env=daemon.env).stdout)]

    # The next change of activity (a prompt) clears it; so nothing about an error is printed.
    post(daemon, hook_payload("UserPromptSubmit"), now - 10 * S)
    s = daemon.get(f"/v1/sessions/{sid}").body
    assert (s["status"], s["error"], s["error_at"]) == ("working", None, None)
    assert error_line(run_aod("show", sid, env=daemon.env).stdout) == []
    assert "ERROR" not in run_aod("sessions", env=daemon.env).stdout.splitlines()[0]
    assert last_logged_session(daemon)["error_at"] is None


def test_a_late_older_event_does_not_clear_the_error(daemon: SocketClient) -> None:
    now = time.time_ns()
    post(daemon, stop_failure("overloaded"), now - 20 * S)
    post(daemon, hook_payload("PreToolUse"), now - 40 * S)  # stamped before the failure, arriving after it
    s = daemon.get("/v1/sessions").body["items"][0]
    assert (s["error"], s["error_at"]) == ("overloaded", iso_from_ns(now - 20 * S))
