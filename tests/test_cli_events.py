"""`aod events` as a user reads it: which session, and when each event happened."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import SocketClient

DAY_NS = 86_400 * 1_000_000_000


def _env(daemon: SocketClient, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in daemon.env.items() if k.startswith(("AOD_", "XDG_"))}, **extra}


def _post(daemon: SocketClient, name: str, occurred_at_ns: int) -> None:
    payload = hook_payload(name)
    reply = daemon.post("/v1/events", {"agent": "claude-code", "session": "s-1", "payload": payload,
                                       "occurred_at": occurred_at_ns})
    assert reply.status == 202 and reply.body["accepted"] == 1, reply.body


@pytest.fixture
def daemon(api: SocketClient) -> SocketClient:
    """These tests need no background job: the API served in-process (tests/helpers/inproc.py)."""
    return api


def test_events_of_a_session_that_does_not_exist_exit_4(daemon: SocketClient) -> None:
    _post(daemon, "SessionStart", time.time_ns())
    missing = run_aod("events", "--session", "nope", env=_env(daemon))
    assert (missing.returncode, missing.stdout) == (4, "")
    assert "no session nope" in missing.stderr
    as_json = run_aod("events", "--session", "nope", "--json", env=_env(daemon))
    assert as_json.returncode == 4
    # A session that exists but has no such events is an empty answer, not a missing session.
    none = run_aod("events", "--session", "s-1", "--kind", "Stop", env=_env(daemon))
    assert (none.returncode, none.stdout.strip()) == (0, "no events")
    found = run_aod("events", "--session", "s-1", "--json", env=_env(daemon))
    assert [e["kind"] for e in json.loads(found.stdout)["items"]] == ["SessionStart"]


def test_events_show_the_date_of_an_event_not_from_today(daemon: SocketClient) -> None:
    # A zone where it is now about noon: the run never straddles the viewer's midnight.
    now = datetime.now(UTC)
    hours = (12 - now.hour) % 24
    hours = hours - 24 if hours > 12 else hours
    zone = timezone(timedelta(hours=hours))
    posix_tz = f"AOD{-hours:+d}"  # POSIX counts hours west of UTC: UTC+5 is "XXX-5"
    now_ns = time.time_ns()
    _post(daemon, "SessionStart", now_ns - 3 * DAY_NS)
    _post(daemon, "UserPromptSubmit", now_ns)

    table = run_aod("events", "--session", "s-1", env=_env(daemon, TZ=posix_tz))

    assert table.returncode == 0, table.stderr
    old = datetime.fromtimestamp((now_ns - 3 * DAY_NS) / 1e9, zone)
    new = datetime.fromtimestamp(now_ns / 1e9, zone)
    old_text = old.strftime("%m-%d %H:%M:%S") if old.year == new.year else old.strftime("%Y-%m-%d %H:%M")
    assert _time_cell(table.stdout, "SessionStart") == old_text
    assert _time_cell(table.stdout, "UserPromptSubmit") == new.strftime("%H:%M:%S")


def _time_cell(table: str, kind: str) -> str:
    """The TIME column of the row of `kind`: between the id and the session."""
    (line,) = [line for line in table.splitlines() if f"  {kind}  " in line]
    return line.split("  s-1  ")[0].split(maxsplit=1)[1].strip()
