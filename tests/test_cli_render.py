"""The query side of the CLI without a daemon: renderers on realistic API JSON, the Unix-socket
client against a real stdlib HTTP server, and the query commands' exit codes and paging."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aod.cli import queries, render
from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable
from aod.cli.render import Col
from tests.helpers.fake_daemon import FakeDaemon, Reply, Seen

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def session(**over: Any) -> dict[str, Any]:
    base = {
        "id": "webapp-3",
        "project_id": "webapp",
        "agent": "claude-code",
        "agent_session_id": "5f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
        "status": "working",
        "activity": "active",
        "is_alive": True,
        "termination_reason": None,
        "runtime": "tmux",
        "runtime_handle": "%12",
        "pid": 41235,
        "workspace_path": "/home/dev/src/webapp",
        "branch": "fix/flaky-login-test",
        "title": "Fix the flaky login test",
        "created_at": ago(hours=3),
        "updated_at": ago(seconds=20),
        "last_event_at": ago(seconds=12),
        "ended_at": None,
    }
    return base | over


def event(**over: Any) -> dict[str, Any]:
    base = {
        "id": 1042,
        "uid": "b6f1e0a2-1111-2222-3333-444455556666",
        "session_id": "webapp-3",
        "agent": "claude-code",
        "kind": "PostToolUse",
        "tool_name": "Bash",
        "tool_use_id": "toolu_01ABC",
        "occurred_at": "2026-11-22T11:59:58.123456Z",
        "received_at": "2026-11-22T11:59:58.125000Z",
        "duration_ms": 1530,
        "ok": True,
        "payload_bytes": 2048,
        "trimmed": False,
    }
    return base | over


def columns_of(line: str, headers: list[str]) -> list[int]:
    return [line.index(h) for h in headers]


# --- relative_time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s ago"),
        (12, "12s ago"),
        (59.9, "59s ago"),
        (60, "1m ago"),
        (5 * 60 + 59, "5m ago"),
        (3599, "59m ago"),
        (3600, "1h ago"),
        (3 * 3600, "3h ago"),
        (86399, "23h ago"),
        (86400, "1d ago"),
        (2 * 86400 + 3600, "2d ago"),
    ],
)
def test_relative_time_boundaries(seconds: float, expected: str) -> None:
    assert render.relative_time(ago(seconds=seconds), NOW) == expected


def test_relative_time_missing_unparsable_offsets_and_skew() -> None:
    assert render.relative_time(None, NOW) == "-"
    assert render.relative_time("", NOW) == "-"
    # Unparsable input is shown as is rather than hidden.
    assert render.relative_time("yesterday-ish", NOW) == "yesterday-ish"
    # Offsets are honoured: 13:00+02:00 is 11:00Z, one hour before NOW.
    assert render.relative_time("2026-11-22T13:00:00+02:00", NOW) == "1h ago"
    # A naive timestamp (and a naive now) is UTC, not local time.
    assert render.relative_time("2026-11-22T11:55:00", NOW.replace(tzinfo=None)) == "5m ago"
    # Small clock skew reads as "just now", a real future as such.
    assert render.relative_time((NOW + timedelta(seconds=2)).isoformat(), NOW) == "0s ago"
    assert render.relative_time((NOW + timedelta(hours=2)).isoformat(), NOW) == "in 2h"


def test_clock_time_shortens_by_distance() -> None:
    assert render.clock_time("2026-11-22T10:00:05.5Z", NOW, UTC) == "10:00:05"
    assert render.clock_time("2026-11-21T10:00:05Z", NOW, UTC) == "11-21 10:00:05"
    assert render.clock_time("2025-01-02T03:04:05Z", NOW, UTC) == "2025-01-02 03:04"
    assert render.clock_time(None, NOW, UTC) == "-"
    # Day boundaries are the viewer's: 23:30Z yesterday is already "today" at UTC+1.
    plus_one = timezone(timedelta(hours=1))
    assert render.clock_time("2026-11-21T23:30:00Z", NOW, plus_one) == "00:30:00"


def test_durations_uptimes_and_sizes() -> None:
    assert [render.format_duration_ms(v) for v in (None, 0, 999, 1000, 1530, 59_999, 60_000, 3_723_000)] == [
        "-", "0ms", "999ms", "1.0s", "1.5s", "60.0s", "1m00s", "1h02m",
    ]
    assert [render.format_uptime(v) for v in (None, 12, 65, 7500, 3 * 86400 + 4 * 3600 + 5)] == [
        "-", "12s", "1m 05s", "2h 05m", "3d 4h",
    ]
    assert [render.format_bytes(v) for v in (None, 0, 1023, 1024, 12_900_000, 5 * 1024**3)] == [
        "-", "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "5.0 GiB",
    ]


# --- table ------------------------------------------------------------------------------------


def test_table_aligns_every_column_and_right_aligns_numbers() -> None:
    rows = [{"name": "a", "n": 5, "x": "short"}, {"name": "longer-name", "n": 12345, "x": "y"}]
    out = render.table(rows, [("NAME", "name"), Col("N", "n", align="right"), ("X", "x")], width=200)
    lines = out.splitlines()
    assert len(lines) == 3
    starts = columns_of(lines[0], ["NAME", "N", "X"])
    # Each value starts where its header starts (left-aligned) ...
    assert lines[1].index("a") == starts[0] and lines[2].index("longer-name") == starts[0]
    assert lines[1].index("short") == starts[2] and lines[2].index("y") == starts[2]
    # ... and numbers end where the widest number ends.
    assert lines[1].index("    5") + 5 == lines[2].index("12345") + 5
    assert all(line == line.rstrip() for line in lines)


def test_table_truncates_the_widest_column_to_fit_and_keeps_unshrinkable_ones() -> None:
    rows = [
        {"id": "webapp-123", "title": "Refactor the authentication middleware to use the new token store"},
        {"id": "w-1", "title": "ok"},
    ]
    out = render.table(rows, [Col("ID", "id", shrink=False), ("TITLE", "title")], width=30)
    lines = out.splitlines()
    assert all(len(line) <= 30 for line in lines)
    assert lines[1].startswith("webapp-123  ")
    assert lines[1].endswith("…") and len(lines[1]) == 30
    assert lines[2].endswith("ok")
    # Wide enough: nothing is cut.
    assert "…" not in render.table(rows, [("ID", "id"), ("TITLE", "title")], width=200)


def test_table_shares_the_cut_between_several_long_columns() -> None:
    rows = [{"a": "a" * 40, "b": "b" * 40, "c": "c"}]
    out = render.table(rows, [("A", "a"), ("B", "b"), ("C", "c")], width=50)
    row = out.splitlines()[1]
    assert len(row) == 50
    a, b, _ = row.split("  ")
    # Both long columns give way, neither disappears: each keeps about half the room.
    assert a.endswith("…") and b.rstrip().endswith("…")
    assert abs(len(a) - len(b.rstrip())) <= 1


def test_table_counts_wide_characters_as_two_cells() -> None:
    rows = [{"id": "s-1", "title": "修复登录测试的间歇性失败问题并补充回归测试"}]
    out = render.table(rows, [Col("ID", "id", shrink=False), ("TITLE", "title")], width=20)
    row = out.splitlines()[1]
    cells = sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in row)
    assert cells <= 20 and row.endswith("…")


def test_table_empty_missing_values_and_control_characters() -> None:
    assert render.table([], [("ID", "id"), ("TITLE", "title")], width=80) == "ID  TITLE"
    out = render.table(
        [{"id": "s-1", "title": "line one\nline two\x1b[31m red"}, {"id": None}],
        [("ID", "id"), ("TITLE", "title")],
        width=80,
    )
    lines = out.splitlines()
    assert len(lines) == 3, "a newline in a cell must not add a row"
    assert "\x1b" not in out and "line one line two [31m red" in lines[1]
    assert lines[2].split() == ["-", "-"]


def test_table_callable_columns_and_terminal_width_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: __import__("os").terminal_size((24, 10)))
    rows = [{"first": "Ada", "last": "Lovelace-Byron-King-Noel-of-Ockham"}]
    out = render.table(rows, [("NAME", lambda r: f"{r['first']} {r['last']}")])
    assert out.splitlines()[1] == "Ada Lovelace-Byron-King…"


# --- sessions and events ----------------------------------------------------------------------


def test_sessions_table_columns_and_relative_last_event() -> None:
    items = [
        session(),
        session(id="api-12", project_id="api", status="needs_input", activity="waiting_input",
                branch=None, title="Add rate limiting", last_event_at=ago(minutes=5, seconds=3)),
    ]
    out = render.sessions_table(items, now=NOW, width=200)
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == "ID"
    headers = ["ID", "STATUS", "ACTIVITY", "AGENT", "PROJECT", "BRANCH", "LAST EVENT", "TITLE"]
    starts = columns_of(lines[0], headers)
    assert starts == sorted(starts)
    assert lines[1][starts[0]:].startswith("webapp-3")
    assert lines[1][starts[6]:].startswith("12s ago")
    assert lines[2][starts[1]:].startswith("needs_input")
    assert lines[2][starts[5]:].startswith("-")
    assert lines[2][starts[6]:].startswith("5m ago")
    assert lines[2].endswith("Add rate limiting")


def test_sessions_table_narrow_terminal_keeps_ids_whole() -> None:
    items = [session(title="A very long title " * 5, branch="feature/" + "x" * 50)]
    out = render.sessions_table(items, now=NOW, width=100)
    row = out.splitlines()[1]
    assert len(row) <= 100
    assert row.startswith("webapp-3  working")
    assert "12s ago" in row and "…" in row


def test_sessions_table_empty() -> None:
    assert render.sessions_table([], now=NOW) == "no sessions"


def test_events_table_columns_ok_and_durations() -> None:
    items = [
        event(),
        event(id=1043, kind="PostToolUseFailure", ok=0, duration_ms=87),
        event(id=1044, kind="Stop", tool_name=None, tool_use_id=None, duration_ms=None, ok=None,
              occurred_at="2026-11-21T09:00:00Z"),
    ]
    out = render.events_table(items, now=NOW, width=200, tz=UTC)
    lines = out.splitlines()
    headers = ["ID", "TIME", "SESSION", "KIND", "TOOL", "DURATION", "OK"]
    assert lines[0].split() == headers
    assert lines[1].split() == ["1042", "11:59:58", "webapp-3", "PostToolUse", "Bash", "1.5s", "yes"]
    assert lines[2].split() == ["1043", "11:59:58", "webapp-3", "PostToolUseFailure", "Bash", "87ms", "no"]
    assert lines[3].split() == ["1044", "11-21", "09:00:00", "webapp-3", "Stop", "-", "-", "-"]
    # Durations are right-aligned: they end in the same column.
    end = lines[1].index("1.5s") + len("1.5s")
    assert lines[2].index("87ms") + len("87ms") == end


def test_events_table_empty() -> None:
    assert render.events_table([], now=NOW) == "no events"


# --- status -----------------------------------------------------------------------------------


STATUS = {
    "version": "0.1.0",
    "pid": 4242,
    "uptime_s": 7512.4,
    "socket": "/run/user/1000/aod/aod.sock",
    "tcp": "127.0.0.1:8765",
    "db": {"path": "/home/dev/.local/share/aod/aod.db", "size_bytes": 12_900_000, "schema_version": 3,
           "epoch": "9f3a61c2"},
    "counts": {"projects": 2, "sessions": 14, "events": 48211, "dead_letters": 1},
    "sessions_by_status": {"working": 2, "idle": 5, "needs_input": 1, "ci_failed": 0, "exited": 6},
    "spool": {"path": "/home/dev/.local/share/aod/spool", "backlog": 0},
    "config": {"path": "/home/dev/.config/aod/config.toml", "errors": []},
}


def test_status_report_reads_every_section() -> None:
    out = render.status_report(STATUS)
    lines = out.splitlines()
    assert lines[0] == "aod 0.1.0 running, pid 4242, up 2h 05m"
    text = "\n".join(lines[1:])
    assert "socket    /run/user/1000/aod/aod.sock" in text
    assert "tcp       127.0.0.1:8765" in text
    assert "aod.db (12.3 MiB, schema 3, epoch 9f3a61c2)" in text
    assert "2 projects, 14 sessions, 48,211 events, 1 dead letter" in text
    # The human's queue first, zeros left out.
    assert "sessions  needs_input 1, working 2, idle 5, exited 6" in text
    assert "ci_failed" not in text
    assert "(0 waiting)" in text
    assert "config.toml (ok)" in text


def test_status_report_config_errors_tcp_off_and_missing_fields() -> None:
    out = render.status_report(
        STATUS | {"tcp": None, "sessions_by_status": {},
                  "config": {"path": None, "errors": ["config.toml: reaper.interval: expected a duration"]}}
    )
    assert "tcp       off" in out
    assert "sessions  none" in out
    assert "config    (none: defaults) (1 error)" in out
    assert out.splitlines()[-1] == "  - config.toml: reaper.interval: expected a duration"
    # A daemon that answers with almost nothing still gets a report, not a crash.
    sparse = render.status_report({"version": "0.2.0"})
    assert sparse.startswith("aod 0.2.0 running, pid ?, up -")
    assert "? projects" in sparse


# --- one session ------------------------------------------------------------------------------


def full_session() -> dict[str, Any]:
    return session(status="ci_failed") | {
        "prs": [{
            "url": "https://github.com/acme/webapp/pull/42",
            "number": 42,
            "state": "open",
            "draft": False,
            "review_decision": "changes_requested",
            "mergeability": "mergeable",
            "ci_state": "failed",
            "head_sha": "3e1f0a9",
            "title": "Fix the flaky login test",
            "checks": [
                {"name": "lint", "status": "passed", "commit_sha": "3e1f0a9", "url": None},
                {"name": "unit-tests", "status": "failed", "commit_sha": "3e1f0a9",
                 "url": "https://github.com/acme/webapp/actions/runs/99"},
            ],
            "comments": [
                {"comment_id": "c1", "author": "rev", "path": "a.py", "line": 3, "body": "why?", "resolved": False},
                {"comment_id": "c2", "author": "rev", "path": "b.py", "line": 9, "body": "ok", "resolved": True},
            ],
        }],
        "trackers": [{"session_id": "webapp-3", "reaction": "ci-failed", "attempts": 2,
                      "first_at": ago(minutes=40), "last_at": ago(minutes=3), "last_signature": "3e1f0a9",
                      "escalated_at": ago(minutes=1), "resolved_at": None}],
        "escalations": [{"id": 7, "session_id": "webapp-3", "reaction": "ci-failed", "priority": "urgent",
                         "message": "CI still failing after 2 nudges", "created_at": ago(minutes=1),
                         "acked_at": None}],
        "events": [event(), event(id=1041, kind="PreToolUse", duration_ms=None, ok=None)],
    }


def test_session_detail_shows_header_then_each_section_in_order() -> None:
    out = render.session_detail(full_session(), now=NOW, width=120, tz=UTC)
    assert out.startswith("session     webapp-3  ci_failed\n")
    for expected in (
        "title       Fix the flaky login test",
        "agent       claude-code (agent session 5f0c1d2e-aaaa-bbbb-cccc-0123456789ab)",
        "activity    active, alive yes",
        "runtime     tmux %12 pid 41235",
        "last event  2026-11-22T11:59:48Z (12s ago)",
        "  #42 Fix the flaky login test",
        "    open, review changes_requested, mergeable, ci failed",
        "      failed  unit-tests  https://github.com/acme/webapp/actions/runs/99",
        "    comments: 2 (1 unresolved)",
        "  ci-failed: attempts 2, since 40m ago, last 3m ago, escalated 1m ago",
        "  #7 urgent ci-failed 1m ago, NOT ACKED: CI still failing after 2 nudges",
    ):
        assert expected in out, expected
    # A passed check does not repeat its (absent) url.
    assert [line for line in out.splitlines() if "lint" in line] == ["      passed  lint"]
    order = [out.index(h) for h in ("\n\npull requests\n", "\n\nreactions\n", "\n\nescalations\n", "\n\nrecent events\n")]
    assert order == sorted(order)
    events_part = out.split("recent events\n")[1].splitlines()
    # Indented like the other sections, and still within the width.
    assert all(line.startswith("  ") and len(line) <= 120 for line in events_part)
    assert events_part[0].split() == ["ID", "TIME", "KIND", "TOOL", "DURATION", "OK"]
    assert events_part[2].split() == ["1041", "11:59:58", "PreToolUse", "Bash", "-", "-"]
    assert "ended" not in out


def test_session_detail_omits_empty_sections_and_shows_the_end() -> None:
    done = session(status="merged", activity="exited", is_alive=None, termination_reason="merged",
                   ended_at=ago(days=2), runtime=None, runtime_handle=None, pid=None) | {
        "prs": [], "trackers": [], "escalations": [], "events": [],
    }
    out = render.session_detail(done, now=NOW)
    for header in ("pull requests", "reactions", "escalations", "recent events"):
        assert header not in out
    assert "\n\n" not in out
    assert "alive unknown" in out
    assert "runtime     -" in out
    assert f"ended       {ago(days=2)} (2d ago), merged" in out


# --- the client against a real HTTP server on a Unix socket (the conftest's fake_daemon) ------


def test_get_json_sends_filters_and_returns_the_body(fake_daemon: FakeDaemon) -> None:
    fake_daemon.routes["/v1/sessions"] = lambda s: (200, {"items": [session()], "next_cursor": None})
    status, body = DaemonClient(fake_daemon.socket_path).get_json(
        "/v1/sessions", {"status": "needs_input", "project": None, "active": 1, "agent": "claude code"}
    )
    assert status == 200
    assert body["items"][0]["id"] == "webapp-3"
    [req] = fake_daemon.seen
    assert req.method == "GET"
    # None means no filter at all; values are URL-encoded.
    assert req.query == {"status": ["needs_input"], "active": ["1"], "agent": ["claude code"]}
    assert req.headers["Host"] == "localhost"


def test_post_json_sends_a_json_body(fake_daemon: FakeDaemon) -> None:
    fake_daemon.routes["/v1/events"] = lambda s: (
        202, {"accepted": len(json.loads(s.body)["events"]), "duplicates": 0, "rejected": []}
    )
    envelope = {"events": [{"agent": "claude-code", "payload": {"hook_event_name": "Stop"}}]}
    status, body = DaemonClient(fake_daemon.socket_path).post_json("/v1/events", envelope)
    assert (status, body["accepted"]) == (202, 1)
    [req] = fake_daemon.seen
    assert req.method == "POST" and req.headers["Content-Type"] == "application/json"
    assert json.loads(req.body) == envelope


def test_error_json_becomes_daemon_error(fake_daemon: FakeDaemon) -> None:
    with pytest.raises(DaemonError) as info:
        DaemonClient(fake_daemon.socket_path).get_json("/v1/sessions/nope-1")
    assert (info.value.status, info.value.code) == (404, "not_found")
    assert info.value.message == "no route /v1/sessions/nope-1"


def test_non_json_error_keeps_the_text(fake_daemon: FakeDaemon) -> None:
    fake_daemon.routes["/v1/status"] = lambda s: (502, "upstream went away", "text/plain")
    with pytest.raises(DaemonError) as info:
        DaemonClient(fake_daemon.socket_path).get_json("/v1/status")
    assert (info.value.status, info.value.code, info.value.message) == (502, "http_error", "upstream went away")


def test_invalid_json_success_is_a_daemon_error(fake_daemon: FakeDaemon) -> None:
    fake_daemon.routes["/v1/status"] = lambda s: (200, "{not json", "application/json")
    with pytest.raises(DaemonError, match="invalid JSON"):
        DaemonClient(fake_daemon.socket_path).get_json("/v1/status")


def test_missing_socket_is_unavailable(short_dir: Path) -> None:
    with pytest.raises(DaemonUnavailable) as info:
        DaemonClient(short_dir / "absent.sock").get_json("/v1/status")
    assert info.value.socket_path == short_dir / "absent.sock"
    assert "does not exist" in info.value.reason


def test_stale_socket_file_is_unavailable(short_dir: Path) -> None:
    # What a crashed daemon leaves behind: the file exists but nobody listens.
    path = short_dir / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    assert path.exists()
    with pytest.raises(DaemonUnavailable, match="refused"):
        DaemonClient(path).get_json("/v1/status")


def test_silent_server_is_unavailable_within_the_timeout(fake_daemon: FakeDaemon) -> None:
    let_go = threading.Event()

    def hold(seen: Seen) -> Reply:
        fake_daemon.release.wait(10)  # set when the test ends
        let_go.set()
        return 200, {}

    fake_daemon.routes["/v1/status"] = hold
    with pytest.raises(DaemonUnavailable, match=r"no answer within 0\.3s"):
        DaemonClient(fake_daemon.socket_path, timeout=0.3).get_json("/v1/status")
    assert not let_go.is_set(), "the client gave up at its own deadline, not when the server let go"
    assert len(fake_daemon.seen) == 1, "the request did reach the server"


def test_stream_yields_decoded_lines(fake_daemon: FakeDaemon) -> None:
    frames = "retry: 2000\n\nid: ep:1\nevent: session\ndata: {\"title\": \"caf\u00e9\"}\r\n\n"
    fake_daemon.routes["/v1/stream"] = lambda s: (200, frames, "text/event-stream")
    lines = list(DaemonClient(fake_daemon.socket_path).stream(
        "/v1/stream", {"after": 0, "session": None}, {"Last-Event-ID": "ep:0"}
    ))
    assert lines == ["retry: 2000", "", "id: ep:1", "event: session", 'data: {"title": "café"}', ""]
    [req] = fake_daemon.seen
    assert req.query == {"after": ["0"]}
    assert req.headers["Last-Event-ID"] == "ep:0" and req.headers["Accept"] == "text/event-stream"


def test_stream_errors_raise_at_the_call(fake_daemon: FakeDaemon, short_dir: Path) -> None:
    with pytest.raises(DaemonError) as info:
        DaemonClient(fake_daemon.socket_path).stream("/v1/nostream")
    assert info.value.status == 404
    with pytest.raises(DaemonUnavailable):
        DaemonClient(short_dir / "absent.sock").stream("/v1/stream")


# --- the query commands -----------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    # The same wiring main.py uses: global options as a parent of every subcommand.
    common = argparse.ArgumentParser(add_help=False)
    for opt in ("--data-dir", "--config", "--socket"):
        common.add_argument(opt, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="aod", parents=[common])
    commands = parser.add_subparsers(dest="command")
    queries.add_parsers(commands, [common])
    return parser.parse_args(argv)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, short_dir: Path) -> Path:
    for name in ("AOD_CONFIG", "AOD_DATA_DIR", "AOD_SOCKET", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(short_dir / "config"))
    return short_dir / "data"


def run_query(daemon_socket: Path, data_dir: Path, *argv: str) -> int:
    return queries.run(parse([*argv, "--socket", str(daemon_socket), "--data-dir", str(data_dir)]))


def test_sessions_all_follows_the_cursor_and_merges_pages(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = {None: (["a-1", "a-2"], "c1"), "c1": (["a-3", "a-4"], "c2"), "c2": (["a-5"], None)}

    def page(seen: Seen) -> Reply:
        ids, nxt = pages[seen.query.get("cursor", [None])[0]]
        return 200, {"items": [session(id=i) for i in ids], "next_cursor": nxt}

    fake_daemon.routes["/v1/sessions"] = page
    assert run_query(fake_daemon.socket_path, isolated, "sessions", "--all", "--limit", "2",
                     "--status", "working", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in out["items"]] == ["a-1", "a-2", "a-3", "a-4", "a-5"]
    assert out["next_cursor"] is None
    assert [r.query.get("cursor") for r in fake_daemon.seen] == [None, ["c1"], ["c2"]]
    assert all(r.query["limit"] == ["2"] and r.query["status"] == ["working"] for r in fake_daemon.seen)


def test_sessions_all_stops_on_a_repeated_cursor(fake_daemon: FakeDaemon, isolated: Path) -> None:
    fake_daemon.routes["/v1/sessions"] = lambda s: (200, {"items": [session()], "next_cursor": "same"})
    assert run_query(fake_daemon.socket_path, isolated, "sessions", "--all", "--json") == 0
    assert len(fake_daemon.seen) == 2


def test_sessions_table_by_default_with_a_paging_hint(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_daemon.routes["/v1/sessions"] = lambda s: (200, {"items": [session()], "next_cursor": "c1"})
    assert run_query(fake_daemon.socket_path, isolated, "sessions", "--active", "--limit", "1") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split()[:3] == ["ID", "STATUS", "ACTIVITY"]
    assert out.splitlines()[1].startswith("webapp-3")
    assert "--all" in err
    assert fake_daemon.seen[0].query == {"active": ["1"], "limit": ["1"]}


def test_show_unknown_id_exits_4_and_quotes_the_id(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_query(fake_daemon.socket_path, isolated, "show", "no/such-1") == 4
    assert "no session no/such-1" in capsys.readouterr().err
    assert fake_daemon.seen[0].path == "/v1/sessions/no%2Fsuch-1"


def test_show_renders_the_detail(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_daemon.routes["/v1/sessions/webapp-3"] = lambda s: (200, full_session())
    assert run_query(fake_daemon.socket_path, isolated, "show", "webapp-3") == 0
    out = capsys.readouterr().out
    assert out.startswith("session     webapp-3  ci_failed")
    assert "pull requests" in out and "recent events" in out


def test_events_passes_filters_and_prints_json_as_is(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"items": [event()], "next_cursor": "x"}
    # A session's events come from its own route, which answers 404 for an unknown session.
    fake_daemon.routes["/v1/sessions/webapp-3/events"] = lambda s: (200, answer)
    assert run_query(fake_daemon.socket_path, isolated, "events", "--session", "webapp-3",
                     "--kind", "PostToolUse", "--tool", "Bash", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out) == answer and out.startswith('{\n  "items"')
    assert fake_daemon.seen[0].query == {"kind": ["PostToolUse"], "tool": ["Bash"], "limit": ["50"]}


def test_status_renders_the_report(fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_daemon.routes["/v1/status"] = lambda s: (200, STATUS)
    assert run_query(fake_daemon.socket_path, isolated, "status") == 0
    assert capsys.readouterr().out.startswith("aod 0.1.0 running, pid 4242")


def test_no_daemon_exits_3_with_the_contract_message(
    short_dir: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "none.sock"
    assert run_query(sock, isolated, "status") == 3
    assert capsys.readouterr().err == f"aod: no daemon is answering on {sock} (start it with `aod serve`)\n"


def test_daemon_error_exits_1_with_its_message(
    fake_daemon: FakeDaemon, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_daemon.routes["/v1/events"] = lambda s: (
        400, {"error": {"code": "bad_filter", "message": "unknown kind 'Nope'"}}
    )
    assert run_query(fake_daemon.socket_path, isolated, "events", "--kind", "Nope") == 1
    assert "unknown kind 'Nope'" in capsys.readouterr().err


def test_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse(["sessions", "--limit", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_query_modules_import_no_heavy_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aod.cli.queries, aod.cli.client, aod.cli.render;"
        "print(sorted(m for m in ('aiohttp', 'apsw', 'orjson', 'yoyo') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
