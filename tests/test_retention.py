"""Retention: the SQL on a real file, the janitor through the writer, the daemon's janitor,
and `aod db prune` with and without a running daemon."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import apsw
import pytest

from aod.config import RetentionConfig, StorageConfig
from aod.jobs import Job
from aod.maintenance.janitor import Janitor, cutoffs, prune
from aod.storage import meta, retention
from aod.storage.connection import open_connection
from aod.storage.database import open_storage
from aod.storage.migrate import migrate
from aod.timefmt import iso_from_seconds
from tests.conftest import run_aod
from tests.helpers.daemon import Daemon
from tests.helpers.rows import seed_session
from tests.helpers.sse import SseClient

DAY = 86400.0
NOW = time.time()


def add_event(conn: apsw.Connection, uid: str, age_days: float, change_age_days: float | None = None) -> None:
    """An event received `age_days` ago; its change_log row stamped `change_age_days` ago."""
    stamp = iso_from_seconds(NOW - age_days * DAY)
    conn.execute(
        "INSERT INTO events (uid, session_id, agent, kind, occurred_at, received_at, payload, payload_bytes)"
        " VALUES (?, 'proj-1', 'claude-code', 'Stop', ?, ?, '{}', 2)", (uid, stamp, stamp),
    )
    at = iso_from_seconds(NOW - (age_days if change_age_days is None else change_age_days) * DAY)[:23] + "Z"
    conn.execute("UPDATE change_log SET at = ? WHERE seq = (SELECT max(seq) FROM change_log)", (at,))


def fill(conn: apsw.Connection, plan: list[tuple[str, float, float | None]]) -> None:
    with conn:
        seed_session(conn)
        conn.execute("UPDATE change_log SET at = ?", (iso_from_seconds(NOW - 60 * DAY)[:23] + "Z",))
        for uid, age, change_age in plan:
            add_event(conn, uid, age, change_age)


def uids(conn: apsw.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT uid FROM events ORDER BY id")]


def seqs(conn: apsw.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT seq FROM change_log ORDER BY seq")]


BEFORE = cutoffs(NOW, RetentionConfig(events_days=30, change_log_days=7))

# seq 1 is the session (60 days old); events e0..e5 get seqs 2..7.
ROWS = [("e0", 40, None), ("e1", 35, None), ("e2", 31, 8), ("e3", 29, 8), ("e4", 2, 2), ("e5", 40, 1)]


def test_prune_batch_deletes_the_old_prefix_and_raises_the_floor_with_it(conn: apsw.Connection) -> None:
    fill(conn, ROWS)
    plan = retention.plan(conn, *BEFORE)
    # e5 is old but comes after newer rows: the prefix (by id) stops at e3; its row stays until
    # the rows before it go. Same for change_log: seqs 1..5 are older than 7 days.
    assert (plan.events, plan.changes, plan.floor_before, plan.floor_after) == (3, 5, 0, 5)
    assert uids(conn) == ["e0", "e1", "e2", "e3", "e4", "e5"]  # a plan deletes nothing

    with conn:
        first = retention.prune_batch(conn, *BEFORE, limit=2)
    assert (first.events, first.changes, first.floor) == (2, 2, 2)
    assert uids(conn) == ["e2", "e3", "e4", "e5"] and seqs(conn) == [3, 4, 5, 6, 7]
    with conn:
        second = retention.prune_batch(conn, *BEFORE, limit=2)
    with conn:
        third = retention.prune_batch(conn, *BEFORE, limit=2)
    assert (second.events, second.changes, second.floor) == (1, 2, 4)
    assert (third.events, third.changes, third.floor) == (0, 1, 5)
    assert uids(conn) == ["e3", "e4", "e5"] and seqs(conn) == [6, 7]
    assert meta.retention_floor(conn) == 5


def test_the_floor_never_moves_down(conn: apsw.Connection) -> None:
    with conn:
        meta.raise_retention_floor(conn, 9)
        meta.raise_retention_floor(conn, 4)
    assert meta.retention_floor(conn) == 9
    with conn:
        conn.execute("DELETE FROM meta WHERE key = 'retention_floor'")
        meta.raise_retention_floor(conn, 3)
    assert meta.retention_floor(conn) == 3


async def test_janitor_prunes_in_batches_through_the_writer(data_dir: Path) -> None:
    path = data_dir / "aod.db"
    migrate(path)
    conn = open_connection(path)
    fill(conn, [(f"old{i}", 40, 10) for i in range(23)] + [("new", 1, 1)])
    conn.close()
    storage = await open_storage(data_dir, StorageConfig())
    try:
        options = RetentionConfig(batch_size=5)
        dry = await prune(storage.db, options, dry_run=True, now=NOW)
        assert (dry.events, dry.change_log, dry.floor_before, dry.floor_after) == (23, 24, 0, 24)
        transactions = storage.db.writer_stats.transactions
        report = await prune(storage.db, options, dry_run=False, now=NOW)
        assert (report.events, report.change_log, report.floor_before, report.floor_after) == (23, 24, 0, 24)
        assert storage.db.writer_stats.transactions - transactions == 5  # 5+5+5+5+4 (and 3 events)
        assert await storage.db.read(uids) == ["new"]
        assert await storage.db.read(seqs) == [25]
        again = await prune(storage.db, options, dry_run=False, now=NOW)
        assert (again.events, again.change_log, again.floor_after) == (0, 0, 24)
    finally:
        await storage.close()


async def test_the_janitor_follows_a_reloaded_retention_config(data_dir: Path) -> None:
    path = data_dir / "aod.db"
    migrate(path)
    conn = open_connection(path)
    fill(conn, [("old", 40, 40), ("new", 1, 1)])
    conn.close()
    storage = await open_storage(data_dir, StorageConfig())
    # As a config reload does: the janitor holds a getter, and the value behind it changes.
    current = {"options": RetentionConfig(events_days=90, change_log_days=90, interval=0.05)}
    janitor = Job("retention", Janitor(storage.db, lambda: current["options"]).step)
    janitor.start()
    try:
        await asyncio.sleep(0.2)  # a few rounds under the first config: 40 days is within 90
        assert await storage.db.read(uids) == ["old", "new"]
        current["options"] = RetentionConfig(events_days=30, change_log_days=30, interval=0.05)
        deadline = time.monotonic() + 5
        while await storage.db.read(uids) != ["new"]:
            assert time.monotonic() < deadline, "the reloaded retention was never applied"
            await asyncio.sleep(0.02)
    finally:
        await janitor.stop()
        await storage.close()


def old_data_dir(short_dir: Path) -> Path:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    migrate(data / "aod.db")
    conn = open_connection(data / "aod.db")
    fill(conn, [(f"old{i}", 40, 10) for i in range(12)] + [(f"new{i}", 1, 1) for i in range(3)])
    conn.close()
    return data


def ro(data: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{data / 'aod.db'}?mode=ro", uri=True) as c:
        return c.execute(sql).fetchall()


async def test_the_daemon_janitor_prunes_at_start_and_streams_reset_below_the_floor(
    short_dir: Path, aod_env: dict[str, str],
) -> None:
    data = old_data_dir(short_dir)
    daemon = Daemon(data, aod_env, "[retention]\nbatch_size = 4\n").start()
    client = SseClient(daemon.socket)
    try:
        deadline = time.monotonic() + 15
        while ro(data, "SELECT value FROM meta WHERE key = 'retention_floor'") != [("13",)]:
            assert time.monotonic() < deadline, ro(data, "SELECT * FROM meta")
            await asyncio.sleep(0.05)
        assert ro(data, "SELECT uid FROM events ORDER BY id") == [("new0",), ("new1",), ("new2",)]
        assert ro(data, "SELECT min(seq) FROM change_log") == [(14,)]
        epoch = ro(data, "SELECT value FROM meta WHERE key = 'db_epoch'")[0][0]

        head = ro(data, "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'")[0][0]
        below = await client.connect(last_event_id=f"{epoch}:12")
        await below.until(lambda c: len(c.frames) >= 1)
        assert (below.frames[0].event, below.frames[0].data) == ("reset", {"head": f"{epoch}:{head}"})
        at_floor = await client.connect(last_event_id=f"{epoch}:13")
        await at_floor.until(lambda c: c.last_seq >= head)
        assert [f.seq for f in at_floor.frames] == [r[0] for r in ro(data, "SELECT seq FROM change_log ORDER BY seq")]
        assert "pruned" in daemon.log.read_text()
    finally:
        await client.close()
        daemon.kill()


def test_db_prune_opens_the_file_itself_only_when_no_daemon_runs(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = old_data_dir(short_dir)
    env = {**aod_env, "AOD_DATA_DIR": str(data), "AOD_SOCKET": str(data / "aod.sock")}
    dry = run_aod("db", "prune", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"events_before": "", "change_log_before": ""} == {
        "dry_run": True, "events": 12, "change_log": 13, "floor_before": 0, "floor_after": 13,
        "events_before": "", "change_log_before": "", "waiting_for_forward": False,
    }
    assert len(ro(data, "SELECT * FROM events")) == 15

    text = run_aod("db", "prune", env=env)
    assert text.returncode == 0, text.stderr
    assert "deleted 12 events" in text.stdout
    assert "deleted 13 change_log rows" in text.stdout
    assert "retention floor 0 -> 13" in text.stdout
    assert "directly (no daemon running)" in text.stdout
    assert ro(data, "SELECT count(*) FROM events") == [(3,)]


def test_db_prune_asks_the_running_daemon(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    try:
        # Old rows appear after the janitor's start-up pass (as if the daemon had run for weeks).
        with sqlite3.connect(data / "aod.db") as c:
            c.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('proj', '/p', 'p', 'x')")
            c.execute("INSERT INTO sessions (id, project_id, agent, created_at, updated_at)"
                      " VALUES ('proj-1', 'proj', 'claude-code', 'x', 'x')")
            old = iso_from_seconds(NOW - 40 * DAY)
            for i in range(4):
                c.execute("INSERT INTO events (uid, session_id, agent, kind, occurred_at, received_at, payload,"
                          " payload_bytes) VALUES (?, 'proj-1', 'claude-code', 'Stop', ?, ?, '{}', 2)", (f"o{i}", old, old))
            c.execute("UPDATE change_log SET at = ?", (old[:23] + "Z",))
        dry = run_aod("db", "prune", "--dry-run", env=daemon.env)
        assert dry.returncode == 0, dry.stderr
        assert "would delete 4 events" in dry.stdout and "would delete 5 change_log rows" in dry.stdout
        assert "retention floor would move 0 -> 5" in dry.stdout
        done = run_aod("db", "prune", "--json", env=daemon.env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["events"], report["change_log"], report["floor_after"]) == (4, 5, 5)
        assert ro(data, "SELECT count(*) FROM events") == [(0,)]
    finally:
        daemon.kill()


def test_db_prune_without_a_database_says_so(short_dir: Path, aod_env: dict[str, str]) -> None:
    env = {**aod_env, "AOD_DATA_DIR": str(short_dir / "nothing"), "AOD_SOCKET": str(short_dir / "s.sock")}
    result = run_aod("db", "prune", env=env)
    assert result.returncode == 1
    assert "no database at" in result.stderr
    assert not (short_dir / "nothing" / "aod.db").exists()


@pytest.mark.parametrize("value", ["0", "-1", '"x"'])
def test_bad_retention_config_is_refused(short_dir: Path, aod_env: dict[str, str], value: str) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    config = short_dir / "c.toml"
    config.write_text(f"[retention]\ninterval = {value}\n")
    env = {**aod_env, "AOD_DATA_DIR": str(data), "AOD_CONFIG": str(config)}
    result = run_aod("db", "prune", "--dry-run", env=env)
    assert result.returncode == 2
    assert "retention.interval" in result.stderr
