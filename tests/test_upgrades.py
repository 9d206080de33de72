"""Upgrades: a database written by the first release opens in this one, and the migrations that
got it there stay exactly as they were committed."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from yoyo import get_backend, read_migrations
from yoyo.migrations import read_sql_migration

from aod.storage.migrate import migration_ids, migrations_dir
from tests.conftest import run_aod
from tests.helpers.daemon import Daemon, request

# sha256 of every committed migration file. Adding a migration means adding its line here;
# a test failing on an existing line means a committed migration was edited: add a new one.
COMMITTED = {
    "0001_schema": "f705ec70efcce0f668b059eb5bc1722c26d4a016ea2f116bb980f52e24e86dcb",
    "0002_dedup_window_in_memory": "035ce72a0f129bf7b877c7764c3474782d3d35cf8a1024cd209fe9ab374d4536",
    "0004_nudges": "b395e011b3aac022bf7fcfabc59cc9f0fa2b912a9d8e76bab1bb6de620dd7978",
    "0005_session_error_at": "91bed30d85ae01fa3d3469d03f35bada2e7529fc4aaaa2bba355e58d263c698b",
    "0006_events_for_stats": "c6afd9446d02d3dba28e8e357c0216d5694e4bc994babd294252467e92509a52",
    "0007_keyset_indexes": "54b05cc8d3d276dcb5576ec9bc0e70827353864f9fe75153a395f7cf68078f4e",
    "0008_usage": "bb151e9a3ebcab4d1a1401de66243741b5cd657c3304b6a64e770ee5455e6233",
    "0009_forward": "f72877456567c4fe7d5f6532440dbe5d63d618ba2b48ca9a316b92aba2c209c6",
    "0010_search": "35dcbe50632ce72070d2088b94f9ea750945c2836e3a79e7429feb6147692641",
    "0011_search_in_batches": "f9ef6abeac5ad888715d19bb770b4dc81e25d047abd8af251e5ac11ffe33f808",
}

# Committed before every migration had to name its parent; committed files are never edited.
BEFORE_THE_PARENT_RULE = {"0002_dedup_window_in_memory"}


def test_committed_migrations_are_never_edited_and_each_names_its_parent() -> None:
    files = {p.stem: p for p in migrations_dir().glob("*.sql") if not p.name.endswith(".rollback.sql")}
    assert sorted(files) == sorted(COMMITTED), "a migration was added or removed: list its hash in COMMITTED"
    for name, path in files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == COMMITTED[name], f"{path.name} was edited"
    ids = migration_ids()
    for at, child in enumerate(ids[1:], start=1):
        directives, _, _ = read_sql_migration(str(files[child]))
        parents = directives.get("depends", "").split()
        if child in BEFORE_THE_PARENT_RULE:
            assert not parents  # it runs after 0001 by yoyo's name order; adding a header would edit it
            continue
        assert parents and set(parents) <= set(ids[:at]), f"{child} must name an earlier migration in '-- depends:'"


def _ago(minutes: int) -> str:
    # Recent: the janitor would prune events older than the retention at the daemon's start.
    at = datetime.now(UTC) - timedelta(minutes=minutes)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


STARTED, LAST = _ago(60), _ago(50)


def _first_release_db(path: Path, tmp: Path) -> None:
    """A file as the first release left it: only 0001 applied (by yoyo, as that release did)."""
    first = tmp / "first-release-migrations"
    first.mkdir()
    shutil.copy(migrations_dir() / "0001_schema.sql", first)
    backend = get_backend(f"sqlite:///{path}")
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(first))))
    finally:
        backend.connection.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as c:
        c.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '0001_schema')")
        c.execute("INSERT INTO projects (id, path, name, next_session_n, created_at)"
                  " VALUES ('shop-1', '/home/u/shop', 'shop', 2, ?)", (STARTED,))
        c.execute("INSERT INTO sessions (id, project_id, agent, agent_session_id, status, activity, activity_at,"
                  " error, is_alive, created_at, updated_at, last_event_at)"
                  " VALUES ('shop-1', 'shop-1', 'claude-code', 'cc-abc', 'needs_input', 'waiting_input',"
                  " ?, 'rate_limit', 1, ?, ?, ?)", (LAST, STARTED, LAST, LAST))
        for i in range(3):
            c.execute("INSERT INTO events (uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at,"
                      " received_at, content_key, payload, payload_bytes) VALUES (?, 'shop-1', 'claude-code',"
                      " 'PreToolUse', 'Bash', ?, ?, ?, ?, '{\"tool_name\": \"Bash\"}', 21)",
                      (f"old-{i}", f"toolu_{i}", _ago(59 - i), _ago(59 - i), f"k{i}"))
        c.execute("INSERT INTO escalations (session_id, reaction, priority, message, created_at)"
                  " VALUES ('shop-1', 'agent-stuck', 'urgent', 'shop-1 is stuck', ?)", (LAST,))


def test_a_first_release_database_is_migrated_and_served(short_dir: Path, aod_env: dict[str, str], tmp_path: Path) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    _first_release_db(data / "aod.db", tmp_path)
    daemon = Daemon(data, aod_env).start()
    try:
        status = daemon.status()
        assert status["db"]["schema_version"] == migration_ids()[-1]
        session = request(daemon.socket, "GET", "/v1/sessions/shop-1").body
        assert session["status"] == "needs_input"
        assert session["error"] == "rate_limit"
        assert session["error_at"] == LAST  # 0005's backfill
        events = request(daemon.socket, "GET", "/v1/events", timeout=10).body["items"]
        assert {e["uid"] for e in events} == {"old-0", "old-1", "old-2"}
        escalations = request(daemon.socket, "GET", "/v1/escalations?open=1").body["items"]
        assert "shop-1 is stuck" in [e["message"] for e in escalations]
        # ... and it keeps working: new events land beside the old ones.
        posted = request(daemon.socket, "POST", "/v1/events", {"events": [{
            "uid": "new-0", "agent": "claude-code", "session": "shop-1",
            "payload": {"hook_event_name": "Stop", "session_id": "cc-abc"}}]})
        assert posted.status == 202, posted.body
        check = run_aod("db", "check", "--json", env=daemon.env)
        assert check.returncode == 0, check.stdout
    finally:
        daemon.stop()
    with contextlib.closing(sqlite3.connect(data / "aod.db")) as c:
        applied = sorted(r[0] for r in c.execute("SELECT migration_id FROM _yoyo_migration"))
        assert applied == migration_ids()
        assert c.execute("SELECT count(*) FROM events").fetchone()[0] == 4
        # 0002 dropped the content-key index the first release had.
        assert not re.search("events_by_content_key", " ".join(
            r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")))
