"""Hook sequences through the API: statuses, late events, /clear, and --resume's double start.

Served in-process (tests/helpers/inproc.py): no reaper runs, so the posted events alone move a
status (their pids are made up)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest

from tests.conftest import hook_payload
from tests.helpers.daemon import SocketClient

CWD = "/home/alice/src/my-project"
S = 1_000_000_000  # ns


def start(source: str, agent_id: str) -> dict[str, Any]:
    return hook_payload("SessionStart", source=source, session_id=agent_id)


def env(payload: dict[str, Any], at: int, pid: int | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"agent": "claude-code", "payload": payload, "occurred_at": at, **extra}
    if pid is not None:
        item["runtime"] = {"pid": pid}
    return item


def post(daemon: SocketClient, *items: dict[str, Any]) -> None:
    body = items[0] if len(items) == 1 else {"events": list(items)}
    reply = daemon.post("/v1/events", body)
    assert reply.status == 202, reply.body


def sessions(daemon: SocketClient) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in daemon.get("/v1/sessions?limit=500").body["items"]}


def rows(daemon: SocketClient, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True) as c:
        return c.execute(sql, args).fetchall()


@pytest.fixture
def daemon(api: SocketClient) -> SocketClient:
    """These tests need no background job: the API served in-process (tests/helpers/inproc.py)."""
    return api


def now_ns() -> int:
    return time.time_ns() - 30 * S  # recent, but leaves room for events "later" than t0


def test_fixture_sequence_drives_the_status(daemon: SocketClient) -> None:
    t0 = now_ns()
    steps = [
        ("SessionStart", "idle"), ("UserPromptSubmit", "working"), ("PreToolUse", "working"),
        ("PermissionRequest", "needs_input"), ("PostToolUse", "working"),
    ]
    for i, (name, status) in enumerate(steps):
        post(daemon, env(hook_payload(name), t0 + i * S, pid=4242))
        assert sessions(daemon)["my-project-1"]["status"] == status, name
    post(daemon, env(hook_payload("Stop", background_tasks=[]), t0 + 10 * S, pid=4242))
    assert sessions(daemon)["my-project-1"]["status"] == "idle"
    # Late, older events (a spooled hook delivered after the daemon restarted) change nothing.
    post(daemon, env(hook_payload("PreToolUse", tool_use_id="late-1"), t0 + 9 * S, pid=4242))
    post(daemon, env(hook_payload("PermissionRequest", tool_use_id="late-2"), t0 + 8 * S, pid=4242))
    session = sessions(daemon)["my-project-1"]
    assert (session["status"], session["activity"]) == ("idle", "idle")
    assert rows(daemon, "SELECT count(*) FROM events") == [(8,)]
    # Every status change, and only those, reached the change log.
    statuses = [json.loads(d)["status"] for (d,) in rows(
        daemon, "SELECT data FROM change_log WHERE entity = 'session' ORDER BY seq")]
    deduped = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    assert deduped == ["idle", "working", "needs_input", "working", "idle"]


def test_clear_hands_over_to_the_new_agent_id(daemon: SocketClient) -> None:
    t0 = now_ns()
    post(daemon, env(start("startup", "a-1"), t0, pid=10), env(hook_payload("UserPromptSubmit", session_id="a-1"), t0 + S, pid=10))
    post(daemon, env(hook_payload("SessionEnd.clear", session_id="a-1"), t0 + 2 * S, pid=10),
         env(start("clear", "a-2"), t0 + 2 * S, pid=10))
    (session,) = sessions(daemon).values()
    assert (session["agent_session_id"], session["termination_reason"], session["status"]) == ("a-2", None, "idle")
    # /clear does not always fire SessionStart: the next prompt under a new id is the same session too.
    post(daemon, env(hook_payload("UserPromptSubmit", session_id="a-3"), t0 + 3 * S, pid=10))
    (session,) = sessions(daemon).values()
    assert (session["agent_session_id"], session["status"]) == ("a-3", "working")
    # A late event for an earlier id still lands there, and does not take the agent id back.
    post(daemon, env(hook_payload("Stop", session_id="a-1"), t0 + S + S // 2, pid=10))
    (session,) = sessions(daemon).values()
    assert (session["agent_session_id"], session["status"]) == ("a-3", "working")
    # Another agent process is another session, even in the same project.
    post(daemon, env(start("startup", "b-1"), t0 + 4 * S, pid=11))
    assert len(sessions(daemon)) == 2


def assert_resumed_into_one(daemon: SocketClient, original: str = "my-project-1", agent_id: str = "orig") -> dict[str, Any]:
    found = sessions(daemon)
    assert list(found) == [original], found
    session = found[original]
    assert (session["agent_session_id"], session["termination_reason"], session["status"]) == (agent_id, None, "idle")
    assert session["pid"] == 222  # the resumed process
    return session


@pytest.mark.parametrize("same_batch", [False, True], ids=["separate", "one-batch"])
@pytest.mark.parametrize("order", ["startup-first", "resume-first"])
def test_resume_of_a_known_session_makes_no_new_session(daemon: SocketClient, order: str, same_batch: bool) -> None:
    t0 = now_ns()
    post(daemon, env(start("startup", "orig"), t0, pid=111), env(hook_payload("UserPromptSubmit", session_id="orig"), t0 + S, pid=111),
         env(hook_payload("SessionEnd", session_id="orig"), t0 + 2 * S, pid=111))
    assert sessions(daemon)["my-project-1"]["status"] == "exited"
    pair = [env(start("startup", "throwaway"), t0 + 10 * S, pid=222), env(start("resume", "orig"), t0 + 10 * S, pid=222)]
    if order == "resume-first":
        pair.reverse()
    if same_batch:
        post(daemon, *pair)
    else:
        for item in pair:
            post(daemon, item)
    assert_resumed_into_one(daemon)
    assert rows(daemon, "SELECT count(*) FROM events WHERE session_id = 'my-project-1'") == [(5,)]
    # The throwaway id is remembered: a stray later event for it lands on the same session.
    post(daemon, env(hook_payload("Notification.idle", session_id="throwaway"), t0 + 11 * S, pid=222))
    assert list(sessions(daemon)) == ["my-project-1"]
    post(daemon, env(hook_payload("UserPromptSubmit", session_id="orig", prompt="go on"), t0 + 12 * S, pid=222))
    assert sessions(daemon)["my-project-1"]["status"] == "working"
    if order == "startup-first" and not same_batch:
        # The throwaway existed for a moment: the stream saw it appear and then end.
        seen = [json.loads(d) for (d,) in rows(
            daemon, "SELECT data FROM change_log WHERE entity_id = 'my-project-2' ORDER BY seq")]
        assert seen[0]["status"] == "idle" and seen[-1]["status"] == "exited"
        assert daemon.get("/v1/sessions/my-project-2").status == 404


@pytest.mark.parametrize("order", ["startup-first", "resume-first"])
def test_resume_of_a_conversation_aod_never_saw(daemon: SocketClient, order: str) -> None:
    t0 = now_ns()
    pair = [env(start("startup", "throwaway"), t0, pid=222), env(start("resume", "orig"), t0, pid=222)]
    for item in pair if order == "startup-first" else reversed(pair):
        post(daemon, item)
    assert_resumed_into_one(daemon)
    post(daemon, env(hook_payload("PreToolUse", session_id="orig"), t0 + S, pid=222))
    assert list(sessions(daemon)) == ["my-project-1"]


def test_resume_pairing_needs_the_same_process(daemon: SocketClient) -> None:
    """Two agents started at once in one project are two sessions, whatever their sources."""
    t0 = now_ns()
    post(daemon, env(start("startup", "a"), t0, pid=301))
    post(daemon, env(start("resume", "b"), t0, pid=302))
    assert len(sessions(daemon)) == 2


def test_a_fresh_session_that_did_work_is_not_folded_away(daemon: SocketClient) -> None:
    t0 = now_ns()
    post(daemon, env(start("startup", "a"), t0, pid=401), env(hook_payload("UserPromptSubmit", session_id="a"), t0 + S, pid=401))
    post(daemon, env(start("startup", "b"), t0 - 60 * S, pid=500))  # b: a known conversation
    post(daemon, env(start("resume", "b"), t0 + 2 * S, pid=401))
    found = sessions(daemon)
    assert len(found) == 2
    assert {s["agent_session_id"] for s in found.values()} == {"a", "b"}


def test_resume_inside_a_spawned_session_keeps_the_real_agent_id(daemon: SocketClient) -> None:
    t0 = now_ns()
    pair = [env(start("resume", "orig"), t0, pid=222, session="spawned-1"),
            env(start("startup", "throwaway"), t0, pid=222, session="spawned-1")]
    for item in pair:
        post(daemon, item)
    found = sessions(daemon)
    assert list(found) == ["spawned-1"]
    assert found["spawned-1"]["agent_session_id"] == "orig"


def test_a_lost_session_comes_back_with_a_newer_event(daemon: SocketClient) -> None:
    t0 = now_ns()
    post(daemon, env(start("startup", "a"), t0, pid=999_999))
    with sqlite3.connect(daemon.data_dir / "aod.db") as c:  # the reaper's verdict, set by hand: grace is 60 s
        c.execute("UPDATE sessions SET termination_reason = 'runtime_lost', is_alive = 0, ended_at = ?"
                  " WHERE id = 'my-project-1'", (time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),))
    post(daemon, env(hook_payload("PreToolUse", session_id="a", tool_use_id="old"), t0 + S, pid=999_999))
    assert sessions(daemon)["my-project-1"]["termination_reason"] == "runtime_lost"
    post(daemon, env(hook_payload("PreToolUse", session_id="a"), time.time_ns() + S, tmux_pane=None, pid=999_998))
    session = sessions(daemon)["my-project-1"]
    assert (session["status"], session["termination_reason"], session["is_alive"]) == ("working", None, None)
    assert (session["runtime"], session["runtime_handle"]) == ("process", "999998")
