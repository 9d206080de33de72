"""Flags are JSON true/false (null where unknown) in API objects, `--json` output and the stream's
`data` (DESIGN §6), and aod.storage.rows.BOOLEANS knows every flag column of the schema."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import orjson
import pytest

from aod.cdc.frames import ENTITY_TABLES, change_frame, change_frames
from aod.storage import change_log, events, prs, sessions
from aod.storage.rows import BOOLEANS, FLAG_NAMES, dicts
from tests.conftest import aod_command, hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.sse import SseClient, head
from tests.helpers.tmux import TmuxServer, clean_environ, start_daemon
from tests.helpers.waiting import wait_for

# Every numeric column of the schema that is not a flag. A new INTEGER column fails
# test_every_numeric_column_is_a_flag_or_a_number until it is listed here or, if it is a flag,
# in aod.storage.rows.BOOLEANS (and then the API and the stream show it as true/false).
NUMBERS = {
    ("change_log", "seq"),
    ("dead_letters", "id"),
    ("deliveries", "id"), ("deliveries", "escalation_id"), ("deliveries", "attempts"),
    ("escalations", "id"),
    ("events", "id"), ("events", "duration_ms"), ("events", "payload_bytes"),
    ("nudges", "id"), ("nudges", "attempts"),
    ("pr_comments", "line"),
    ("projects", "next_session_n"),
    ("prs", "number"),
    ("reaction_trackers", "attempts"),
    ("sessions", "pid"),
    ("session_usage", "messages"), ("session_usage", "input_tokens"), ("session_usage", "output_tokens"),
    ("session_usage", "cache_creation_input_tokens"), ("session_usage", "cache_read_input_tokens"),
    ("session_usage", "unpriced_messages"), ("session_usage", "sidechain_messages"),
    ("transcript_offsets", "offset"), ("transcript_offsets", "inode"),
    ("usage", "id"), ("usage", "input_tokens"), ("usage", "output_tokens"), ("usage", "cache_creation_input_tokens"),
    ("usage", "cache_creation_1h_tokens"), ("usage", "cache_read_input_tokens"),
    ("forward_cursor", "seq"),
}
# Storage classes that never hold a flag; any other declared type (INTEGER, INT, BOOLEAN,
# NUMERIC, none) could.
NOT_FLAG_TYPES = {"TEXT", "BLOB", "REAL"}
LOOKS_LIKE_A_FLAG = re.compile(r"(is|has|can|was|should|needs|allow)_\w+|\w+_ok|ok|draft|\w+ed|enabled|active|force")


def js(value: Any) -> str:
    """Compact JSON: unlike ==, it tells true from 1 and false from 0."""
    return orjson.dumps(value).decode()


def schema_columns(conn: apsw.Connection) -> Iterator[tuple[str, str, str]]:
    """(table, column, declared type) of aod's own tables: not SQLite's, yoyo's, views or FTS shadows."""
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'"
        " AND name NOT LIKE 'sqlite%' AND name NOT LIKE '%yoyo%' ORDER BY name"
    )]
    for table in tables:
        for name, declared in conn.execute("SELECT name, upper(type) FROM pragma_table_info(?)", (table,)):
            yield table, name, declared


# --- the map and the schema ------------------------------------------------------------------------


def unclassified(conn: apsw.Connection) -> list[str]:
    return [f"{table}.{name}" for table, name, declared in schema_columns(conn)
            if declared not in NOT_FLAG_TYPES and name not in BOOLEANS.get(table, ()) and (table, name) not in NUMBERS]


def named_like_a_flag(conn: apsw.Connection) -> list[str]:
    return [f"{t}.{n}" for t, n, _ in schema_columns(conn) if LOOKS_LIKE_A_FLAG.fullmatch(n) and n not in BOOLEANS.get(t, ())]


def test_every_numeric_column_is_a_flag_or_a_number(conn: apsw.Connection) -> None:
    found = unclassified(conn)
    assert not found, f"classify {found}: a flag goes in aod.storage.rows.BOOLEANS, a number in NUMBERS here"
    assert not named_like_a_flag(conn)


def test_a_new_flag_column_is_caught(conn: apsw.Connection) -> None:
    # What a future migration might add: the checks above must not let it through unconverted.
    conn.execute("ALTER TABLE prs ADD COLUMN auto_merge INTEGER")
    conn.execute("ALTER TABLE sessions ADD COLUMN is_pinned TEXT")
    conn.execute("ALTER TABLE escalations ADD COLUMN silenced BOOLEAN")
    assert unclassified(conn) == ["escalations.silenced", "prs.auto_merge"]
    assert named_like_a_flag(conn) == ["escalations.silenced", "sessions.is_pinned"]


def test_a_flag_name_is_a_flag_in_every_table_and_the_map_names_real_integer_columns(conn: apsw.Connection) -> None:
    columns = {(t, n): declared for t, n, declared in schema_columns(conn)}
    # Rows are converted by column name: a non-flag column of a flag's name would become a boolean.
    clashes = [f"{t}.{n}" for (t, n) in columns if n in FLAG_NAMES and n not in BOOLEANS.get(t, ())]
    assert not clashes
    mapped = {(t, n) for t, names in BOOLEANS.items() for n in names}
    assert {columns.get(key) for key in mapped} == {"INTEGER"}, "a BOOLEANS entry names no INTEGER column"


def test_every_entity_the_triggers_write_is_known_to_the_frames(conn: apsw.Connection) -> None:
    bodies = [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
    written = {m for sql in bodies for m in re.findall(r"SELECT '(\w+)', '(?:insert|update)'", sql)}
    assert written == set(ENTITY_TABLES), written
    tables = {t for t, _, _ in schema_columns(conn)}
    assert set(ENTITY_TABLES.values()) <= tables


# --- rows and frames on a real file ----------------------------------------------------------------


def _seed(conn: apsw.Connection) -> None:
    now = "2026-01-01T00:00:00.000000Z"
    conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('p', '/p', 'p', ?)", (now,))
    for sid, alive in (("p-1", 1), ("p-2", 0), ("p-3", None)):
        conn.execute("INSERT INTO sessions (id, project_id, agent, is_alive, pid, created_at, updated_at)"
                     " VALUES (?, 'p', 'claude-code', ?, 1, ?, ?)", (sid, alive, now, now))
    for uid, ok, trimmed in (("e1", 1, 0), ("e2", 0, 1), ("e3", None, 0)):
        conn.execute("INSERT INTO events (uid, session_id, agent, kind, occurred_at, received_at, duration_ms, ok,"
                     " payload, payload_bytes, trimmed) VALUES (?, 'p-1', 'claude-code', 'PostToolUse', ?, ?, 1, ?,"
                     " '{}', 2, ?)", (uid, now, now, ok, trimmed))
    prs.upsert(conn, "p-1", {"url": "u", "number": 1, "state": "open", "draft": True, "head_sha": "h"}, now)
    prs.upsert_checks(conn, "u", [{"name": "unit", "commit_sha": "h", "status": "failed"}], now)
    prs.replace_comments(conn, "u", [{"comment_id": "c1", "line": 1, "resolved": True},
                                     {"comment_id": "c2", "line": 1}], now)
    conn.execute("INSERT INTO escalations (session_id, reaction, priority, message, created_at)"
                 " VALUES ('p-1', 'needs-input', 'urgent', 'm', ?)", (now,))
    conn.execute("INSERT INTO session_usage (session_id, messages, updated_at) VALUES ('p-1', 1, ?)", (now,))


def test_rows_carry_booleans_and_leave_numbers_alone(conn: apsw.Connection) -> None:
    _seed(conn)
    got = [[s["is_alive"], s["pid"]] for sid in ("p-1", "p-2", "p-3") if (s := sessions.get(conn, sid))]
    assert js(got) == "[[true,1],[false,1],[null,1]]"  # a 1 that is not a flag stays a number
    items, _ = events.listing(conn, events.EventFilter(), 10, None, ascending=True)
    assert js([[e["ok"], e["trimmed"], e["duration_ms"]] for e in items]) == "[[true,false,1],[false,true,1],[null,false,1]]"
    (pr,) = prs.for_session(conn, "p-1")
    assert js([pr["draft"], [c["resolved"] for c in pr["comments"]]]) == "[true,[true,false]]"
    # The join of the listing page (`c.*`) is converted too.
    (listed,) = prs.for_sessions(conn, ["p-1"])["p-1"]
    assert js([listed["draft"], [[c["resolved"], c["line"]] for c in listed["comments"]]]) == "[true,[[true,1],[false,1]]]"
    # By column name: a computed column of another name keeps SQLite's number.
    (row,) = dicts(conn.execute("SELECT ok, ok AS raw FROM events WHERE uid = 'e1'"))
    assert js(row) == '{"ok":true,"raw":1}'


def test_stream_frames_carry_booleans_from_the_triggers(conn: apsw.Connection) -> None:
    _seed(conn)
    conn.execute("UPDATE sessions SET is_alive = 1 WHERE id = 'p-3'")
    rows = change_log.rows_after(conn, 0, 1000)
    frames = change_frames("ep", rows)
    datas = [orjson.loads(f.frame.split(b"\ndata: ", 1)[1])["data"] for f in frames]
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for frame, data in zip(frames, datas, strict=True):
        by_entity.setdefault(frame.entity, []).append(data)
    assert js([[s["is_alive"], s["pid"]] for s in by_entity["session"]]) == "[[true,1],[false,1],[null,1],[true,1]]"
    assert js([[e["ok"], e["duration_ms"]] for e in by_entity["event"]]) == "[[true,1],[false,1],[null,1]]"
    assert js([p["draft"] for p in by_entity["pr"]]) == "[true]"
    # Entities without flags embed the trigger's JSON text untouched.
    for frame, row in zip(frames, rows, strict=True):
        if frame.entity in ("check", "escalation"):
            assert b'"data":' + row[7].encode() + b"}" in frame.frame
    assert set(by_entity) == set(ENTITY_TABLES)


def test_a_frame_of_an_entity_the_frames_do_not_know_converts_flags_by_name() -> None:
    item = change_frame("ep", (9, "t", "widget", "insert", "w", None, None, '{"ok":0,"draft":null,"n":1}'))
    body = orjson.loads(item.frame.split(b"\ndata: ", 1)[1])
    assert js(body["data"]) == '{"ok":false,"draft":null,"n":1}'


# --- a real daemon: the API, the stream, the CLI ---------------------------------------------------


def flags_in(value: Any) -> list[tuple[str, Any]]:
    """Every (key, value) of a flag name anywhere in an API answer (payloads are the agent's own JSON)."""
    if isinstance(value, list):
        return [pair for item in value for pair in flags_in(item)]
    if isinstance(value, dict):
        return [pair for key, item in value.items() if key != "payload"
                for pair in ([(key, item)] if key in FLAG_NAMES else flags_in(item))]
    return []


def assert_booleans(answer: Any, *expected: str) -> None:
    found = flags_in(answer)
    assert {key for key, _ in found} >= set(expected), found
    assert all(v is None or type(v) is bool for _, v in found), [(k, v) for k, v in found if type(v) is not bool]


@pytest.fixture
def aod(short_dir: Path, aod_env: dict[str, str]) -> Iterator[Daemon]:
    server = TmuxServer().start()
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    d = start_daemon(data, aod_env, server, '[reaper]\ninterval = "0.3s"\n[ingest]\nmax_payload_bytes = 2048\n')
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.kill()
    server.stop()


def hook(d: Daemon, name: str, **fields: Any) -> None:
    payload = hook_payload(name) | {"session_id": "agent-b", "cwd": "/tmp"} | fields
    reply = d.post("/v1/events", {"agent": "claude-code", "payload": payload})
    assert reply.status == 202 and reply.body["accepted"] == 1, reply.body


def cli(d: Daemon, *args: str) -> str:
    result = subprocess.run([*aod_command(), *args], capture_output=True, text=True, timeout=30,
                            env={**clean_environ(), **d.env})
    assert result.returncode == 0, result.stderr
    return result.stdout


async def stream_until(d: Daemon, last: int) -> list[dict[str, Any]]:
    client = SseClient(d.socket)
    try:
        conn = await client.connect("?after=0")
        await conn.until(lambda c: c.last_seq >= last)
        await conn.close()
        return [f.data for f in conn.frames if f.event != "reset"]
    finally:
        await client.close()


def test_api_stream_and_cli_answer_true_false_and_null(aod: Daemon, tmp_path: Path) -> None:
    d = aod
    # A session from hooks alone: nothing probes it, so whether it is alive stays unknown.
    hook(d, "PreToolUse")
    hook(d, "PostToolUse")
    hook(d, "PostToolUseFailure")
    hook(d, "Notification", message="x" * 5000)  # over max_payload_bytes: trimmed
    (sid,) = [s["id"] for s in d.get("/v1/sessions").body["items"]]
    pr = {"url": "https://github.com/acme/w/pull/3", "number": 3, "state": "open", "draft": True,
          "review_decision": None, "mergeability": "unknown", "head_sha": "abc", "title": "W",
          "checks": [{"name": "unit", "status": "failed", "url": "https://ci/1"}],
          "comments": [{"comment_id": "c1", "body": "fixed", "resolved": True}, {"comment_id": "c2", "body": "why?"}]}
    posted = d.post(f"/v1/sessions/{sid}/pr", pr)
    assert posted.status == 200, posted.body
    assert posted.body["pr"]["draft"] is True
    assert [c["resolved"] for c in posted.body["pr"]["comments"]] == [True, False]
    hook(d, "PermissionRequest")  # needs-input pages by default: an escalation
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["escalations"], message="the escalation")

    # A spawned session: alive, then killed. Both answers come from the write that set the flag.
    spawned = d.post("/v1/sessions", {"project": str(tmp_path), "command": ["sleep", "600"]})
    assert spawned.status == 201, spawned.body
    assert spawned.body["is_alive"] is True
    killed = d.post(f"/v1/sessions/{spawned.body['id']}/kill")
    assert killed.status == 200, killed.body
    assert js([killed.body["is_alive"], killed.body["runtime_ended"]]) == "[false,true]"

    listed = d.get("/v1/sessions").body
    assert_booleans(listed, "is_alive")
    assert {s["id"]: s["is_alive"] for s in listed["items"]} == {sid: None, spawned.body["id"]: False}

    detail = d.get(f"/v1/sessions/{sid}").body
    assert_booleans(detail, "is_alive", "draft", "resolved", "ok", "trimmed")
    assert detail["is_alive"] is None and detail["prs"][0]["draft"] is True
    assert [c["resolved"] for c in detail["prs"][0]["comments"]] == [True, False]
    assert detail["escalations"][0]["reaction"] == "needs-input"
    by_kind = {e["kind"]: (e["ok"], e["trimmed"]) for e in detail["events"]}
    assert by_kind["PostToolUse"] == (True, False) and by_kind["PostToolUseFailure"] == (False, False)
    assert by_kind["PreToolUse"] == (None, False) and by_kind["Notification"] == (None, True)

    for path in ("/v1/events", f"/v1/sessions/{sid}/events", "/v1/events?payload=1&order=asc"):
        page = d.get(path).body
        assert_booleans(page, "ok", "trimmed")
        assert {e["ok"] for e in page["items"]} == {True, False, None}
    (trimmed,) = d.get("/v1/events?kind=Notification").body["items"]
    one = d.get(f"/v1/events/{trimmed['id']}").body
    assert (one["ok"], one["trimmed"]) == (None, True)

    # The stream: every flag of every frame, and each kind of value where it belongs.
    frames = asyncio.run(stream_until(d, head(d.data_dir)))
    assert_booleans(frames, "is_alive", "ok", "draft")
    seen = {(f["entity"], key, value) for f in frames for key, value in flags_in(f["data"])}
    assert {("session", "is_alive", v) for v in (None, True, False)} <= seen
    assert {("event", "ok", v) for v in (None, True, False)} <= seen
    assert ("pr", "draft", True) in seen

    # --json prints what the API answered; the text views say yes/no/unknown, never True/1.
    shown = cli(d, "show", sid, "--json")
    assert '"draft": true' in shown and '"is_alive": null' in shown and '"resolved": false' in shown
    assert_booleans(json.loads(shown), "is_alive", "draft", "resolved", "ok", "trimmed")
    assert_booleans(json.loads(cli(d, "events", "--json")), "ok", "trimmed")
    assert_booleans(json.loads(cli(d, "sessions", "--json", "--all")), "is_alive")
    text = cli(d, "show", sid) + cli(d, "show", spawned.body["id"]) + cli(d, "events")
    assert "alive unknown" in text and "alive no" in text and "(1 unresolved)" in text
    assert "True" not in text and "False" not in text
    assert re.search(r"PostToolUseFailure\s.*\bno\s*$", text, re.M) and re.search(r"PostToolUse\s.*\byes\s*$", text, re.M)
