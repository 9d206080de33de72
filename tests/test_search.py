"""Full-text search (issue 20): GET /v1/search and `aod search` against a real daemon, retention
taking hits out of the index, and the migration indexing the events stored before it."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import apsw
from yoyo import get_backend, read_migrations

from aod.storage import search
from aod.storage.migrate import migrate, migrations_dir
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, SocketClient
from tests.helpers.waiting import wait_for


def _post(client: SocketClient, session: str, payload: dict[str, Any], occurred_at: str) -> None:
    reply = client.post("/v1/events", {"agent": "claude-code", "session": session, "payload": payload,
                                       "occurred_at": occurred_at})
    assert reply.status == 202 and reply.body["accepted"] == 1, reply.body


def _search(client: SocketClient, query: str) -> Any:
    reply = client.get(f"/v1/search?{query}")
    assert reply.status == 200, reply.body
    return reply.body


def _indexed(client: SocketClient, query: str, count: int) -> list[dict[str, Any]]:
    """The hits of `query` once there are `count` of them: the indexer runs after the commits."""
    found: list[dict[str, Any]] = wait_for(lambda: (items := _search(client, query)["items"]) and len(items) == count
                                           and items, timeout=10, interval=0.05, message=f"{count} hits for {query}")
    return found


def _prompt(text: str) -> dict[str, Any]:
    return hook_payload("UserPromptSubmit", prompt=text)


def _bash(command: str) -> dict[str, Any]:
    return hook_payload("PreToolUse", tool_input={"command": command, "description": "run it"})


def test_search_finds_prompts_and_commands_with_filters_and_pages(daemon: Daemon) -> None:
    _post(daemon, "alpha-1", _prompt("Refactor the flux capacitor before lunch"), "2026-03-01T10:00:00Z")
    _post(daemon, "alpha-1", _bash("pytest -q tests/test_flux.py"), "2026-03-01T10:00:05Z")
    _post(daemon, "beta-1", _prompt("Polish the <b>flux</b> docs & README"), "2026-03-02T09:00:00Z")
    _post(daemon, "beta-1", hook_payload("Notification", message="Claude needs your permission to use Bash"),
          "2026-03-02T09:00:01Z")

    # Indexed in a batch about half a second after the commits (aod/lookback/indexer.py).
    hits = _indexed(daemon, "q=flux", 3)
    # Then it sleeps until the next commit: no timer while nothing waits.
    wait_for(lambda: daemon.status()["jobs"]["search-index"] == {
        "state": "waiting", "last_error": None, "restarts": 0, "next_due": None}, timeout=5, message="the indexer idle")
    # Newest first; the snippet is HTML-escaped with the hits marked.
    assert [(h["session_id"], h["kind"]) for h in hits] == [
        ("beta-1", "UserPromptSubmit"), ("alpha-1", "PreToolUse"), ("alpha-1", "UserPromptSubmit")]
    assert hits[0]["snippet"] == "Polish the &lt;b&gt;<mark>flux</mark>&lt;/b&gt; docs &amp; README"
    assert hits[1]["snippet"] == "pytest -q tests/test_<mark>flux</mark>.py\nrun it"
    assert hits[2]["occurred_at"] == "2026-03-01T10:00:00.000000Z"
    event = daemon.get(f"/v1/events/{hits[1]['event_id']}").body
    assert event["payload"]["tool_input"]["command"] == "pytest -q tests/test_flux.py"

    # A Bash command by its words, a phrase, a prefix; a notification's text.
    assert [h["kind"] for h in _search(daemon, "q=pytest")["items"]] == ["PreToolUse"]
    assert len(_search(daemon, "q=%22flux+capacitor%22")["items"]) == 1
    assert len(_search(daemon, "q=capac*")["items"]) == 1
    assert [h["kind"] for h in _search(daemon, "q=permission")["items"]] == ["Notification"]

    # Filters: session, kind, time, project (none of these sessions has one).
    assert {h["session_id"] for h in _search(daemon, "q=flux&session=alpha-1")["items"]} == {"alpha-1"}
    assert [h["kind"] for h in _search(daemon, "q=flux&kind=PreToolUse")["items"]] == ["PreToolUse"]
    assert [h["session_id"] for h in _search(daemon, "q=flux&since=2026-03-02T00:00:00Z")["items"]] == ["beta-1"]
    assert len(_search(daemon, "q=flux&until=2026-03-01T10:00:01Z")["items"]) == 1
    assert _search(daemon, "q=flux&project=nope")["items"] == []

    # Keyset pages: every hit once, in order, then no cursor.
    first = _search(daemon, "q=flux&limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = _search(daemon, f"q=flux&limit=2&cursor={first['next_cursor']}")
    assert [h["event_id"] for h in first["items"] + second["items"]] == [h["event_id"] for h in hits]
    assert second["next_cursor"] is None
    one = _search(daemon, "q=flux&session=alpha-1&limit=1")  # the other walk (the session's events first)
    other = _search(daemon, f"q=flux&session=alpha-1&limit=1&cursor={one['next_cursor']}")
    assert [h["event_id"] for h in one["items"] + other["items"]] == [h["event_id"] for h in hits[1:]]
    assert other["next_cursor"] is None

    # Malformed FTS5 queries are a 400 that says why; so is an empty one.
    for bad in ("flux+AND", "%22unterminated", "nosuchcolumn:flux", "NEAR("):
        reply = daemon.get(f"/v1/search?q={bad}")
        assert reply.status == 400, (bad, reply.body)
        assert reply.body["error"]["code"] == "invalid_query"
        assert reply.body["error"]["message"].startswith("q: ")
    assert daemon.get("/v1/search?q=").status == 400
    assert daemon.get("/v1/search?q=flux&cursor=zzz").status == 400

    # The CLI: a line per hit, the hit in brackets when piped; --json is the API's body.
    env = daemon.env
    text = run_aod("search", "capacitor", env=env)
    assert text.returncode == 0, text.stderr
    assert "alpha-1" in text.stdout and "Refactor the flux [capacitor] before lunch" in text.stdout
    as_json = run_aod("search", "flux", "--session", "beta-1", "--json", env=env)
    assert [h["session_id"] for h in json.loads(as_json.stdout)["items"]] == ["beta-1"]
    bad = run_aod("search", "flux AND", env=env)
    assert bad.returncode == 1 and "invalid_query" in bad.stderr


def test_pruned_events_are_no_longer_found(data_dir: Path, aod_env: dict[str, str]) -> None:
    # Events received more than ~1.7 s ago are old enough to prune.
    daemon = Daemon(data_dir, aod_env, "[retention]\nevents_days = 0.00002\ninterval = \"1h\"\n").start()
    try:
        _post(daemon, "s-1", _prompt("the zeppelin departs"), "2026-03-01T10:00:00Z")
        _indexed(daemon, "q=zeppelin", 1)
        time.sleep(2.0)
        _post(daemon, "s-1", _prompt("another zeppelin arrives"), "2026-03-01T10:00:01Z")
        _indexed(daemon, "q=zeppelin", 2)
        report = daemon.post("/v1/admin/prune")
        assert report.status == 200 and report.body["events"] == 1, report.body
        hits = _search(daemon, "q=zeppelin")["items"]
        assert [h["snippet"] for h in hits] == ["another <mark>zeppelin</mark> arrives"]
        assert _search(daemon, "q=departs")["items"] == []
        check = run_aod("db", "check", "--full", "--json", env=daemon.env)
        assert check.returncode == 0, check.stdout
        assert {"name": "search triggers", "ok": True, "detail": "4 present"} in json.loads(check.stdout)["checks"]
    finally:
        daemon.stop()


def test_the_migration_indexes_the_events_stored_before_it(tmp_path: Path) -> None:
    before = tmp_path / "before-search"
    before.mkdir()
    for sql in migrations_dir().glob("*.sql"):
        if sql.stem < "0010":
            shutil.copy(sql, before)
    path = tmp_path / "aod.db"
    backend = get_backend(f"sqlite:///{path}")
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(before))))
    finally:
        backend.connection.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as c:
        for i, payload in enumerate([_prompt("an old quokka prompt"), {"hook_event_name": "Stop"}, "not json"]):
            c.execute("INSERT INTO events (uid, agent, kind, occurred_at, received_at, payload, payload_bytes)"
                      " VALUES (?, 'claude-code', 'UserPromptSubmit', '2026-01-01T00:00:00.000Z',"
                      " '2026-01-01T00:00:00.000Z', ?, 1)", (f"old-{i}", json.dumps(payload)))
    assert {"0010_search", "0011_search_in_batches"} <= set(migrate(path).applied)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as c:
        found = c.execute("SELECT e.uid FROM event_search JOIN events e ON e.id = event_search.rowid"
                          " WHERE event_search MATCH 'quokka'").fetchall()
        assert found == [("old-0",)]
        # Only events with text are in the index; a row that is not JSON is skipped, not an error.
        assert c.execute("SELECT count(*) FROM event_search").fetchone() == (1,)
        assert _cursor(c) == 3  # every event so far is indexed
        c.execute("DELETE FROM events")
        assert c.execute("SELECT count(*) FROM event_search WHERE event_search MATCH 'quokka'").fetchone() == (0,)
        assert _cursor(c) == 0  # the table is empty: the next event takes id 1 again
        c.execute("INSERT INTO event_search (event_search, rank) VALUES ('integrity-check', 1)")


def _cursor(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT value FROM meta WHERE key = 'search_indexed_through'").fetchone()[0])


def test_the_indexer_follows_the_events_after_its_cursor_and_ids_used_again(conn: apsw.Connection) -> None:
    def add(uid: str, text: str) -> None:
        conn.execute("INSERT INTO events (uid, agent, kind, occurred_at, received_at, payload, payload_bytes)"
                     " VALUES (?, 'claude-code', 'UserPromptSubmit', '2026-01-01T00:00:00.000000Z',"
                     " '2026-01-01T00:00:00.000000Z', ?, 1)", (uid, json.dumps(_prompt(text))))

    def found(text: str) -> list[int]:
        return [h["event_id"] for h in search.search(conn, search.SearchFilter(text), 50, None)[0]]

    with conn:
        for i in range(5):
            add(f"a{i}", f"wombat number{i}")
    assert found("wombat") == [] and search.unindexed(conn)
    with conn:
        assert search.index_next(conn, 3) == 3
    assert found("wombat") == [3, 2, 1]
    with conn:
        assert search.index_next(conn, 3) == 2
        assert search.index_next(conn, 3) == 0
    assert found("wombat") == [5, 4, 3, 2, 1] and not search.unindexed(conn)
    # Retention empties the table; the ids come again, and are indexed again, not taken for indexed.
    with conn:
        conn.execute("DELETE FROM events WHERE id <= 5")
        add("b0", "numbat")
    assert found("wombat") == [] and found("numbat") == []
    with conn:
        assert search.index_next(conn, 10) == 1
    assert found("numbat") == [1]
    with conn:
        conn.execute("DELETE FROM events")  # an unindexed event leaves the index alone
        add("b1", "quoll")
        add("b2", "quoll")
        conn.execute("DELETE FROM events WHERE id = 1")
    assert conn.execute("INSERT INTO event_search (event_search, rank) VALUES ('integrity-check', 1)").fetchall() == []
    with conn:
        search.index_next(conn, 10)
    assert found("quoll") == [2]
    conn.execute("INSERT INTO event_search (event_search, rank) VALUES ('integrity-check', 1)")


def test_a_malformed_query_is_refused_whichever_way_the_search_walks(api: SocketClient) -> None:
    # With a session filter the session's events are walked first: one with none still parses the query.
    _post(api, "empty-1", hook_payload("Stop"), "2026-03-01T10:00:00Z")
    for query in ("q=flux+AND&session=empty-1", "q=flux+AND&session=nope", "q=flux+AND"):
        reply = api.get(f"/v1/search?{query}")
        assert reply.status == 400 and reply.body["error"]["code"] == "invalid_query", (query, reply.body)
    assert _search(api, "q=flux&session=empty-1")["items"] == []
