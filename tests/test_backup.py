"""`aod db backup` while a real daemon keeps ingesting, and `aod db restore` with it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import run_aod
from tests.helpers.daemon import Daemon, request
from tests.helpers.sse import SseClient, tool_event


def _read(db: Path, sql: str) -> list[tuple[object, ...]]:
    # Closed at once: a connection left open would keep restore from folding the WAL.
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return c.execute(sql).fetchall()


def _uids(db: Path) -> set[str]:
    return {str(r[0]) for r in _read(db, "SELECT uid FROM events")}


def _cursor(db: Path) -> str:
    """The SSE cursor of the newest change: `<db_epoch>:<head seq>`."""
    epoch = _read(db, "SELECT value FROM meta WHERE key = 'db_epoch'")[0][0]
    seq = _read(db, "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'")[0][0]
    return f"{epoch}:{seq}"


class Ingest(threading.Thread):
    """Posts one event after another and records each uid once the daemon acknowledged it."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon=True)
        self.socket = daemon.socket
        self.acked: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            uid = f"ingest-{n}"
            reply = request(self.socket, "POST", "/v1/events", {"events": [tool_event(uid)]})
            assert reply.status == 202, reply.body
            self.acked.append(uid)
            n += 1


def test_backup_during_sustained_ingest_holds_every_acknowledged_event(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    ingest = Ingest(daemon)
    try:
        ingest.start()
        while len(ingest.acked) < 300:
            time.sleep(0.01)
        acked_before = set(ingest.acked)
        target = short_dir / "backups" / "aod-backup.db"
        target.parent.mkdir()
        result = run_aod("db", "backup", str(target), env=daemon.env)
        during = len(ingest.acked) - len(acked_before)
        assert result.returncode == 0, result.stderr
        assert "online, while the daemon runs" in result.stdout
        time.sleep(0.2)
    finally:
        ingest.stopping.set()
        ingest.join(10)
        daemon.stop()
    assert during > 0, "ingest stalled while the backup ran"
    assert acked_before <= _uids(target)
    assert _read(target, "PRAGMA integrity_check") == [("ok",)]
    assert _read(target, "PRAGMA journal_mode") == [("delete",)]
    # One self-contained file, and no temp file left beside it.
    assert sorted(p.name for p in target.parent.iterdir()) == ["aod-backup.db"]
    assert target.stat().st_mode & 0o077 == 0


def test_restore_refuses_while_running_then_swaps_the_file_with_a_new_epoch(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    backup = short_dir / "b.db"
    try:
        assert request(daemon.socket, "POST", "/v1/events", {"events": [tool_event(f"old-{i}") for i in range(5)]}).status == 202
        assert run_aod("db", "backup", str(backup), env=daemon.env).returncode == 0
        assert request(daemon.socket, "POST", "/v1/events", {"events": [tool_event(f"new-{i}") for i in range(5)]}).status == 202
        old_cursor = _cursor(data / "aod.db")
        refused = run_aod("db", "restore", str(backup), env=daemon.env)
        assert refused.returncode == 2
        assert "cannot restore while the daemon runs" in refused.stderr
    finally:
        daemon.stop()

    not_a_db = short_dir / "junk.db"
    not_a_db.write_bytes(b"not sqlite at all" * 100)
    junk = run_aod("db", "restore", str(not_a_db), env=daemon.env)
    assert junk.returncode == 1 and "junk.db" in junk.stderr
    into_dir = run_aod("db", "backup", str(short_dir), env=daemon.env)
    assert into_dir.returncode == 1 and "is a directory" in into_dir.stderr

    offline = run_aod("db", "backup", str(short_dir / "offline.db"), env=daemon.env)
    assert offline.returncode == 0 and "no daemon running" in offline.stdout
    assert _uids(short_dir / "offline.db") == {f"{age}-{i}" for age in ("old", "new") for i in range(5)}
    nothing = run_aod("db", "backup", str(short_dir / "x.db"), "--data-dir", str(short_dir / "none"), env=daemon.env)
    assert nothing.returncode == 1 and "no database at" in nothing.stderr
    assert not (short_dir / "none").exists()

    restored = run_aod("db", "restore", str(backup), env=daemon.env)
    assert restored.returncode == 0, restored.stderr
    aside = [p for p in data.iterdir() if p.name.startswith("aod.db.before-restore-")]
    assert [p.name for p in aside] == [aside[0].name] and f"kept as {aside[0]}" in restored.stdout
    assert {f"new-{i}" for i in range(5)} <= _uids(aside[0])  # the WAL was folded into the file kept aside
    assert _uids(data / "aod.db") == {f"old-{i}" for i in range(5)}
    assert _cursor(data / "aod.db").split(":")[0] != old_cursor.split(":")[0]

    daemon.start()
    try:
        async def first_frame() -> str:
            client = SseClient(daemon.socket)
            try:
                conn = await client.connect(last_event_id=old_cursor)
                await conn.until(lambda c: len(c.frames) >= 1)
                return conn.frames[0].event
            finally:
                await client.close()

        assert asyncio.run(first_frame()) == "reset"
        listed = request(daemon.socket, "GET", "/v1/events", timeout=10).body
        assert {e["uid"] for e in listed["items"]} >= {f"old-{i}" for i in range(5)}
    finally:
        daemon.stop()


def test_a_backup_copied_page_by_page_is_one_snapshot_while_another_connection_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In steps of one page, with commits landing between steps: the copy finishes, holds one
    consistent state (rows committed together are copied together), and the writer never waits."""
    from aod.storage import backup
    from aod.storage.connection import open_connection
    from aod.storage.migrate import migrate

    db = tmp_path / "aod.db"
    migrate(db)
    writer = open_connection(db)
    with writer:
        for _ in range(500):  # some hundreds of pages to copy
            writer.execute("INSERT INTO dead_letters (source, received_at, error, body) VALUES ('seed', 'now', 'e', ?)",
                           ("x" * 2000,))
    commits = 0
    stopping = threading.Event()

    def commit_pairs() -> None:
        nonlocal commits
        while not stopping.is_set():
            with writer:
                for side in ("a", "b"):
                    writer.execute("INSERT INTO dead_letters (source, received_at, error) VALUES (?, 'now', 'e')", (side,))
            commits += 1

    monkeypatch.setattr(backup, "STEP_PAGES", 1)
    thread = threading.Thread(target=commit_pairs)
    thread.start()
    try:
        while commits < 10:
            time.sleep(0.001)
        before = commits
        backup.backup(db, tmp_path / "copy.db")
        during = commits - before
    finally:
        stopping.set()
        thread.join(10)
        writer.close()
    assert during > 0
    rows = dict(_read(tmp_path / "copy.db", "SELECT source, count(*) FROM dead_letters GROUP BY source"))
    assert rows["seed"] == 500 and rows["a"] == rows["b"] >= before
