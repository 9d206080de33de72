"""`GET /v1/stats`: the figures on a real SQLite file (aod/storage/stats.py), then the route,
served in-process on a real database, fed through real ingest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import apsw

from aod.storage import stats
from aod.timefmt import iso_from_seconds, now_iso, parse_iso
from tests.helpers.daemon import SocketClient
from tests.helpers.rows import T0, seed_session


def _event(conn: apsw.Connection, uid: str, at: str, tool: str | None = "Bash", duration: int | None = None,
           ok: int | None = None, session: str = "proj-1") -> None:
    conn.execute(
        "INSERT INTO events (uid, session_id, agent, kind, tool_name, occurred_at, received_at, duration_ms, ok,"
        " payload, payload_bytes) VALUES (?, ?, 'claude-code', 'PostToolUse', ?, ?, ?, ?, ?, '{}', 2)",
        (uid, session, tool, at, at, duration, ok),
    )


def _at(minutes: float) -> str:
    return iso_from_seconds(parse_iso(T0).timestamp() + minutes * 60)


def _flt(since: float, until: float, **kw: str) -> stats.StatsFilter:
    return stats.StatsFilter(since=_at(since), until=_at(until), **kw)


def test_percentiles_are_nearest_rank_per_tool(conn: apsw.Connection) -> None:
    seed_session(conn)
    for d in range(1, 21):  # Bash: 1..20 ms, stored out of order
        _event(conn, f"b{d}", _at(0.5), "Bash", duration=(d * 7) % 20 + 1, ok=0 if d <= 3 else 1)
    _event(conn, "r1", _at(0.5), "Read", duration=None, ok=1)  # no duration known
    _event(conn, "r2", _at(0.5), "Read", duration=42, ok=1)
    _event(conn, "prompt", _at(0.5), tool=None)
    tools = stats.tools(conn, _flt(0, 1))
    assert tools == [
        # nearest rank: p50 of 20 is the 10th smallest, p95 the 19th
        {"tool_name": "Bash", "count": 20, "failures": 3, "p50_ms": 10, "p95_ms": 19},
        {"tool_name": "Read", "count": 2, "failures": 0, "p50_ms": 42, "p95_ms": 42},
    ]
    _event(conn, "g1", _at(0.5), "Grep", duration=None)
    assert stats.tools(conn, _flt(0, 1))[-1] == {"tool_name": "Grep", "count": 1, "failures": 0, "p50_ms": None, "p95_ms": None}


def test_every_minute_of_the_window_has_an_entry_and_until_is_exclusive(conn: apsw.Connection) -> None:
    seed_session(conn)
    _event(conn, "before", _at(-0.01))
    _event(conn, "first", _at(0))
    _event(conn, "a", _at(2.2))
    _event(conn, "b", _at(2.9))
    _event(conn, "at-until", _at(4))
    per_minute = stats.events_per_minute(conn, _flt(0, 4))
    assert per_minute == [
        {"minute": "2026-11-22T10:00:00Z", "count": 1},
        {"minute": "2026-11-22T10:01:00Z", "count": 0},
        {"minute": "2026-11-22T10:02:00Z", "count": 2},
        {"minute": "2026-11-22T10:03:00Z", "count": 0},
    ]
    # A window that starts and ends mid-minute covers both partial minutes, counting only inside it.
    assert [m["count"] for m in stats.events_per_minute(conn, _flt(2.5, 4.5))] == [1, 0, 1]


def test_project_and_session_narrow_every_figure(conn: apsw.Connection) -> None:
    seed_session(conn, "proj-1")
    seed_session(conn, "proj-2")
    conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('other', '/src/other', 'other', ?)", (T0,))
    conn.execute("INSERT INTO sessions (id, project_id, agent, status, created_at, updated_at)"
                 " VALUES ('other-1', 'other', 'claude-code', 'working', ?, ?)", (T0, T0))
    _event(conn, "p1", _at(0.1), session="proj-1")
    _event(conn, "p2", _at(0.2), "Read", session="proj-2")
    _event(conn, "o1", _at(0.3), "Edit", session="other-1")
    whole = stats.stats(conn, _flt(0, 1))
    assert whole["sessions_by_status"] == {"idle": 2, "working": 1}
    assert whole["events_per_minute"] == [{"minute": "2026-11-22T10:00:00Z", "count": 3}]
    project = stats.stats(conn, _flt(0, 1, project="proj"))
    assert project["sessions_by_status"] == {"idle": 2}
    assert [t["tool_name"] for t in project["tools"]] == ["Bash", "Read"]
    session = stats.stats(conn, _flt(0, 1, session="proj-2"))
    assert session["sessions_by_status"] == {"idle": 1}
    assert session["events_per_minute"][0]["count"] == 1
    assert [t["tool_name"] for t in session["tools"]] == ["Read"]


def test_sessions_count_when_they_lived_in_the_window(conn: apsw.Connection) -> None:
    seed_session(conn, "proj-1")  # created at T0, never ended
    seed_session(conn, "proj-2")
    conn.execute("UPDATE sessions SET status = 'done', ended_at = ? WHERE id = 'proj-2'", (_at(10),))
    assert stats.sessions_by_status(conn, _flt(-10, -1)) == {}  # before either was created
    assert stats.sessions_by_status(conn, _flt(5, 15)) == {"done": 1, "idle": 1}
    assert stats.sessions_by_status(conn, _flt(11, 20)) == {"idle": 1}  # proj-2 ended before it


def test_every_event_query_reads_the_window_from_the_covering_index(conn: apsw.Connection) -> None:
    seed_session(conn)
    ran: list[tuple[str, Any]] = []
    conn.exec_trace = lambda _cursor, sql, bindings: ran.append((sql, bindings)) or True
    for flt in (_flt(0, 60), _flt(0, 60, project="proj"), _flt(0, 60, session="proj-1")):
        stats.stats(conn, flt)
    conn.exec_trace = None
    on_events = [(sql, b) for sql, b in ran if "FROM events" in sql]
    assert len(on_events) == 9
    for sql, bindings in on_events:
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, bindings))
        assert "COVERING INDEX events_for_stats" in plan and "SCAN events" not in plan, plan


# --- the route, served in-process (tests/helpers/inproc.py) ---------------------------------------


def _post(daemon: Any, at: str, kind: str, tool: str | None = None, duration: int | None = None) -> None:
    payload = {"hook_event_name": kind, "session_id": "agent-1", "cwd": str(daemon.data_dir)}
    if tool:
        payload.update(tool_name=tool, tool_use_id=f"toolu-{at}-{kind}")
    if duration is not None:
        payload["duration_ms"] = duration
    reply = daemon.post("/v1/events", {"agent": "claude-code", "occurred_at": at, "payload": payload})
    assert reply.status == 202 and reply.body["accepted"] == 1, reply.body


def test_route_answers_the_last_hour_by_default(api: SocketClient) -> None:
    now = datetime.now(UTC)
    recent, old = (now - timedelta(minutes=2)).isoformat(), (now - timedelta(hours=2)).isoformat()
    _post(api, recent, "PostToolUse", "Bash", 120)
    _post(api, recent, "PostToolUseFailure", "Bash", 30)
    _post(api, recent, "UserPromptSubmit")
    _post(api, old, "PostToolUse", "Read", 5)
    reply = api.get("/v1/stats")
    assert reply.status == 200, reply.body
    body = reply.body
    assert sum(body["sessions_by_status"].values()) == 1
    minutes = body["events_per_minute"]
    # The last hour, minute by minute: 61 entries (the partial minutes at both ends).
    assert len(minutes) == 61 and minutes[-1]["minute"][:16] == now_iso()[:16]
    assert sum(m["count"] for m in minutes) == 3
    assert body["tools"] == [{"tool_name": "Bash", "count": 2, "failures": 1, "p50_ms": 30, "p95_ms": 120}]
    # An explicit window reaches the older event.
    since = quote((now - timedelta(hours=3)).isoformat())
    tools = api.get(f"/v1/stats?since={since}").body["tools"]
    assert {t["tool_name"]: t["count"] for t in tools} == {"Bash": 2, "Read": 1}


BAD = [
    ("since=yesterday", 400, "since"),
    ("until=2026-13-01T00:00:00Z", 400, "until"),
    ("since=2026-11-29T10:00:00Z&until=2026-11-29T10:00:00Z", 400, "before until"),
    ("since=2026-11-01T00:00:00Z&until=2026-11-29T00:00:00Z", 400, "7 days"),
    ("session=nobody-1", 404, "nobody-1"),
    ("project=nowhere", 404, "nowhere"),
]


def test_route_refuses_bad_parameters_clearly(api: SocketClient) -> None:
    for query, status, says in BAD:
        reply = api.get(f"/v1/stats?{query}")
        assert reply.status == status, (query, reply.body)
        assert reply.body["error"]["code"] == ("invalid_parameter" if status == 400 else "not_found"), query
        assert says in reply.body["error"]["message"], (query, reply.body)
    # At the ends of the calendar the window is cut, not refused.
    first = api.get("/v1/stats?until=0001-01-01T00:30:00Z")
    assert first.status == 200 and len(first.body["events_per_minute"]) == 30
    last = api.get("/v1/stats?since=9999-12-31T23:30:00Z&until=9999-12-31T23:59:59.999999Z")
    assert last.status == 200 and last.body["events_per_minute"][-1] == {"minute": "9999-12-31T23:59:00Z", "count": 0}
