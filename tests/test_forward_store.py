"""The forwarder against a real PostgreSQL, in-process: a real SQLite file (open_storage), the real
team schema, roles and row-level security; no daemon (tests/test_forward_daemon.py has those)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest

from aod.config import PostgresForwardConfig, RetentionConfig
from aod.forward.job import LINGER, Forwarder
from aod.maintenance.janitor import prune
from aod.storage import forward
from aod.storage.database import Database, open_storage
from tests.helpers.postgres import Postgres, member_role
from tests.helpers.rows import T0, insert_event, seed_session


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    storage = await open_storage(tmp_path / "data")
    yield storage.db
    await storage.close()


def _seed(conn: apsw.Connection, n: int = 3) -> None:
    seed_session(conn)
    for i in range(n):
        insert_event(conn, f"uid-{i}", payload=f'{{"i": {i}, "text": "hé"}}')
    conn.execute("UPDATE sessions SET status = 'working', activity = 'active', is_alive = 1 WHERE id = 'proj-1'")
    conn.execute("INSERT INTO prs (url, session_id, number, state, draft, updated_at) VALUES"
                 " ('https://github.com/o/r/pull/7', 'proj-1', 7, 'open', 0, ?)", (T0,))
    conn.execute("INSERT INTO pr_checks (pr_url, name, commit_sha, status, created_at, updated_at) VALUES"
                 " ('https://github.com/o/r/pull/7', 'ci', 'abc', 'failed', ?, ?)", (T0, T0))
    conn.execute("INSERT INTO escalations (session_id, reaction, priority, message, created_at) VALUES"
                 " ('proj-1', 'ci-failed', 'urgent', 'CI fails', ?)", (T0,))
    for i, cost in enumerate((0.25, None)):
        conn.execute("INSERT INTO usage (message_id, request_id, session_id, model, input_tokens, output_tokens,"
                     " cache_creation_input_tokens, cache_creation_1h_tokens, cache_read_input_tokens, cost_usd,"
                     " occurred_at, is_sidechain) VALUES (?, 'req', 'proj-1', 'claude-x', 10, 20, 30, 0, 40, ?, ?, ?)",
                     (f"msg-{i}", cost, T0, i))


def _forwarder(db: Database, dsn: str, **options: Any) -> Forwarder:
    config = PostgresForwardConfig(dsn=dsn, **options)
    return Forwarder(db, lambda: config)


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


async def test_a_batch_lands_with_tenant_and_machine_and_a_resend_changes_nothing(db: Database, team_dsn: str) -> None:
    await db.write(_seed)
    fwd = _forwarder(db, team_dsn)
    assert await fwd.step() == LINGER  # a batch shipped: the next waits a little for company
    assert await fwd.step() is None  # nothing left: it sleeps until a commit wakes it
    machine = await db.read(forward.machine_id)
    assert len(machine) == 32
    events = _rows(team_dsn, "SELECT tenant_id, machine_id, uid, payload, ok, trimmed, occurred_at::text"
                             " FROM aod.events ORDER BY uid")
    assert [(e[0], e[1], e[2]) for e in events] == [("postgres", machine, f"uid-{i}") for i in range(3)]
    assert events[1][3] == {"i": 1, "text": "hé"} and events[1][5] is False
    assert events[0][6] == "2026-11-22 10:00:00+00"
    assert _rows(team_dsn, "SELECT id, status, is_alive FROM aod.sessions") == [("proj-1", "working", True)]
    assert _rows(team_dsn, "SELECT number, draft FROM aod.prs") == [(7, False)]
    assert _rows(team_dsn, "SELECT name, status FROM aod.pr_checks") == [("ci", "failed")]
    assert _rows(team_dsn, "SELECT reaction, priority FROM aod.escalations") == [("ci-failed", "urgent")]
    assert _rows(team_dsn, "SELECT id, path FROM aod.projects") == [("proj", "/src/proj")]
    assert _rows(team_dsn, "SELECT message_id, cost_usd, is_sidechain, input_tokens + cache_read_input_tokens"
                           " FROM aod.usage ORDER BY 1") == [("msg-0", 0.25, False, 50), ("msg-1", None, True, 50)]
    assert await db.read(forward.usage_cursor) == 2
    head = (await db.read(forward.lag)).head
    assert (await db.read(forward.lag)).cursor == head and fwd.forwarded == head

    # A crash after PostgreSQL committed but before the cursor moved: the batch goes again.
    await db.write(lambda c: (c.execute("UPDATE forward_cursor SET seq = 0"), c.execute(
        "DELETE FROM meta WHERE key = ?", (forward.USAGE_CURSOR,))))
    await db.write(lambda c: c.execute("UPDATE sessions SET status = 'needs_input' WHERE id = 'proj-1'"))
    again = _forwarder(db, team_dsn)
    await again.step()
    assert _rows(team_dsn, "SELECT count(*), count(DISTINCT uid) FROM aod.events") == [(3, 3)]
    assert _rows(team_dsn, "SELECT id, status FROM aod.sessions") == [("proj-1", "needs_input")]
    assert _rows(team_dsn, "SELECT count(*) FROM aod.usage") == [(2,)]
    for table in ("sessions", "prs", "pr_checks", "escalations", "projects"):
        assert _rows(team_dsn, f"SELECT count(*) FROM aod.{table}") == [(1,)], table


async def test_a_tenant_reads_only_its_own_rows_unless_in_the_team_role(
        tmp_path: Path, postgres: Postgres, team_dsn: str) -> None:
    member_role(postgres, "alice")
    member_role(postgres, "bob")
    member_role(postgres, "lead", team=True)
    dbname = team_dsn.rsplit("/", 1)[1]
    as_role = {r: postgres.dsn(role=r, db=dbname) for r in ("alice", "bob", "lead")}
    for who in ("alice", "bob"):
        storage = await open_storage(tmp_path / who)
        try:
            await storage.db.write(lambda c: _seed(c, 2))
            await storage.db.write(lambda c, w=who: c.execute("UPDATE events SET uid = ? || uid", (w + "-",)))
            fwd = _forwarder(storage.db, as_role[who])
            await fwd.step()
            assert fwd.last_error is None
        finally:
            await storage.close()
    assert _rows(as_role["alice"], "SELECT DISTINCT tenant_id FROM aod.events") == [("alice",)]
    assert _rows(as_role["alice"], "SELECT count(*) FROM aod.sessions") == [(1,)]
    assert _rows(as_role["bob"], "SELECT uid FROM aod.events ORDER BY uid") == [("bob-uid-0",), ("bob-uid-1",)]
    assert _rows(as_role["bob"], "SELECT count(*) FROM aod.events WHERE tenant_id = 'alice'") == [(0,)]
    assert _rows(as_role["lead"], "SELECT tenant_id, count(*) FROM aod.sessions GROUP BY 1 ORDER BY 1") == [
        ("alice", 1), ("bob", 1)]
    # Writing as another tenant is refused: the tenant is the authenticated role, not a claim.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), psycopg.connect(as_role["alice"]) as conn:
        conn.execute("INSERT INTO aod.sessions (tenant_id, machine_id, id, agent, status, activity, created_at,"
                     " updated_at) VALUES ('bob', 'm', 'x-1', 'a', 'idle', 'idle', now(), now())")
    with psycopg.connect(as_role["lead"]) as conn:  # the team role reads every tenant, writes only its own
        assert conn.execute("UPDATE aod.sessions SET status = 'idle'").rowcount == 0


def _dead_dsn() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/nothing"


async def test_retention_keeps_what_the_team_store_lacks_until_it_is_forwarded(db: Database, team_dsn: str) -> None:
    await db.write(_seed)
    old = "2020-01-01T00:00:00.000Z"
    await db.write(lambda c: (c.execute("UPDATE change_log SET at = ?", (old,)),
                              c.execute("UPDATE events SET received_at = ?", (old + "000",))))
    down = _forwarder(db, _dead_dsn())
    await down.step()
    assert down.last_error is not None and (await db.read(forward.hold)) == 0
    options = RetentionConfig()
    report = await prune(db, options, dry_run=True)
    assert report.waiting_for_forward and report.change_log == 0 and report.events == 0
    report = await prune(db, options, dry_run=False)
    assert report.waiting_for_forward and report.change_log == 0 and report.events == 0
    assert (await db.read(lambda c: c.execute("SELECT count(*) FROM events").fetchone()))[0] == 3
    status = down.status(await db.read(forward.lag), keep_days=7)
    assert status["retention_waiting"] and status["lag_rows"] > 0 and status["lag_seconds"] > 7 * 86400
    assert status["circuit"] == "closed" and status["failures_in_a_row"] == 1 and status["last_error"]

    up = _forwarder(db, team_dsn)
    await up.step()
    report = await prune(db, options, dry_run=False)
    assert not report.waiting_for_forward and report.events == 3 and report.change_log > 0
    assert _rows(team_dsn, "SELECT count(*) FROM aod.events") == [(3,)]


async def test_turning_forwarding_off_lets_retention_go_on(db: Database, team_dsn: str) -> None:
    await db.write(_seed)
    await db.write(lambda c: c.execute("UPDATE change_log SET at = '2020-01-01T00:00:00.000Z'"))
    await _forwarder(db, _dead_dsn()).step()
    assert (await db.read(forward.hold)) == 0
    assert await _forwarder(db, "").step() is None
    assert (await db.read(forward.hold)) is None
    report = await prune(db, RetentionConfig(), dry_run=False)
    assert not report.waiting_for_forward and report.change_log > 0


async def test_a_new_team_store_gets_its_schema_from_a_forwarder_that_may_create_it(
        db: Database, postgres: Postgres) -> None:
    postgres.sql("CREATE DATABASE team_blank")
    dsn = postgres.dsn(db="team_blank")
    await db.write(_seed)
    fwd = _forwarder(db, dsn)
    await fwd.step()
    assert fwd.last_error is None
    assert _rows(dsn, "SELECT count(*) FROM aod.events") == [(3,)]
    assert _rows(dsn, "SELECT count(*) FROM pg_policies WHERE schemaname = 'aod'") == [(14,)]


async def test_a_stopped_postgres_is_a_failed_attempt_after_the_timeout(
        db: Database, team_dsn: str, postgres: Postgres) -> None:
    await db.write(_seed)
    options = PostgresForwardConfig(dsn=team_dsn)
    fwd = Forwarder(db, lambda: options, attempt_timeout=0.5)
    await fwd.step()  # connected, first batch in
    await db.write(lambda c: insert_event(c, "uid-late"))
    postgres.signal_all(signal.SIGSTOP)
    try:
        started = time.monotonic()
        delay = await fwd.step()
        assert time.monotonic() - started < 3
        assert delay is not None and fwd.failures == 1 and "no answer" in (fwd.last_error or "")
    finally:
        postgres.signal_all(signal.SIGCONT)
    await asyncio.sleep(delay)
    await fwd.step()  # a new connection; the old one is left to the thread still waiting on it
    assert _rows(team_dsn, "SELECT count(*) FROM aod.events WHERE uid = 'uid-late'") == [(1,)]


async def test_nul_characters_postgresql_cannot_hold_are_replaced_not_a_stuck_batch(
        db: Database, team_dsn: str) -> None:
    await db.write(_seed)
    await db.write(lambda c: (insert_event(c, "uid-nul", payload='{"stdout": "a\\u0000b", "n": 1}'),
                              c.execute("UPDATE sessions SET title = ? WHERE id = 'proj-1'", ("x\x00y",))))
    fwd = _forwarder(db, team_dsn)
    await fwd.step()
    assert fwd.last_error is None
    assert _rows(team_dsn, "SELECT payload FROM aod.events WHERE uid = 'uid-nul'") == [({"stdout": "a\ufffdb", "n": 1},)]
    assert _rows(team_dsn, "SELECT title FROM aod.sessions") == [("x\ufffdy",)]


async def test_a_new_team_store_gets_what_change_log_no_longer_tells(db: Database, team_dsn: str) -> None:
    await db.write(_seed)
    # An older file: retention pruned change_log (events stay longer) before forwarding was set up.
    await db.write(lambda c: c.execute("UPDATE change_log SET at = '2020-01-01T00:00:00.000Z'"))
    assert (await prune(db, RetentionConfig(), dry_run=False)).change_log > 0
    assert (await db.read(lambda c: c.execute("SELECT count(*) FROM change_log").fetchone()))[0] == 0
    old = "2020-01-01T00:00:00.000000Z"
    await db.write(lambda c: c.execute("UPDATE events SET received_at = ?", (old,)))

    down = _forwarder(db, _dead_dsn())
    await down.step()  # the backfill is set up, nothing sent: retention keeps the events for it
    assert (await db.read(forward.backfill_state)) == (0, 3)
    assert down.status(await db.read(forward.lag), keep_days=7)["backfill"] == {"sent_through": 0, "until": 3}
    report = await prune(db, RetentionConfig(), dry_run=False)
    assert report.waiting_for_forward and report.events == 0

    fwd = _forwarder(db, team_dsn, batch_size=2)
    delays = [await fwd.step() for _ in range(3)]
    assert delays[0] == 0.0 and delays[-1] is None, delays  # 2 events, then the last one, then nothing
    assert (await db.read(forward.backfill_state)) is None
    assert fwd.status(await db.read(forward.lag), keep_days=7)["backfill"] is None
    assert _rows(team_dsn, "SELECT uid FROM aod.events ORDER BY uid") == [("uid-0",), ("uid-1",), ("uid-2",)]
    for table in ("sessions", "projects", "prs", "pr_checks", "escalations"):
        assert _rows(team_dsn, f"SELECT count(*) FROM aod.{table}") == [(1,)], table
    assert _rows(team_dsn, "SELECT count(*) FROM aod.usage") == [(2,)]
    report = await prune(db, RetentionConfig(), dry_run=False)
    assert not report.waiting_for_forward and report.events == 3  # now they may go
