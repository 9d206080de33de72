"""`aod db check`: verifies a database file is healthy and complete.

One implementation for both places it runs: on a file the CLI opened under the data dir lock,
and inside a running daemon (`GET /v1/admin/check`), where the read-only checks run on a reader
connection and the trigger round trip on the writer's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import apsw

from aod.storage import change_log, meta
from aod.storage.connection import open_connection
from aod.storage.migrate import migration_ids
from aod.storage.rows import scalar_text

TABLES = (
    "projects", "sessions", "session_aliases", "events", "prs", "pr_checks", "pr_comments",
    "reaction_trackers", "escalations", "deliveries", "dead_letters", "change_log", "meta", "forward_cursor",
    "usage", "transcript_offsets", "session_usage", "event_search",
)
CDC_TABLES = ("sessions", "events", "prs", "pr_checks", "escalations", "session_usage")
ROUND_TRIP = "change_log trigger"
# Without them a deleted event stays in the full-text index (aod/migrations/0011_search_in_batches.sql).
SEARCH_TRIGGERS = ("events_search_delete", "events_search_rewind", "events_search_unindex", "events_search_reindex")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(db_path: Path, *, full: bool = False) -> list[Check]:
    if not db_path.exists():
        return [Check("database file", False, f"{db_path} does not exist; run `aod db migrate`")]
    conn = open_connection(db_path)
    try:
        return [*read_checks(conn, full=full), trigger_round_trip(conn)]
    finally:
        conn.close()


def report(db_path: Path, checks: list[Check], *, full: bool) -> dict[str, Any]:
    """What `aod db check --json` prints, whoever ran the checks."""
    return {"ok": all(c.ok for c in checks), "db_path": str(db_path), "full": full,
            "checks": [asdict(c) for c in checks]}


def read_checks(conn: apsw.Connection, *, full: bool) -> list[Check]:
    """Every check that only reads: fine on a query_only reader inside its read transaction."""
    return [
        _journal_mode(conn),
        _integrity(conn, full=full),
        _foreign_keys(conn),
        _schema_version(conn),
        _tables(conn),
        _triggers(conn),
        _search_triggers(conn),
        _epoch(conn),
    ]


def _journal_mode(conn: apsw.Connection) -> Check:
    mode = scalar_text(conn.execute("PRAGMA journal_mode"))
    return Check("journal_mode", mode == "wal", str(mode))


def _integrity(conn: apsw.Connection, *, full: bool) -> Check:
    # quick_check skips matching index entries to their rows: O(N) instead of O(N log N), so it
    # is the default; integrity_check is the thorough one, worth its time after a crash.
    pragma = "integrity_check" if full else "quick_check"
    rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    return Check("integrity", rows == ["ok"], f"{pragma}: " + "; ".join(rows[:5]))


def _foreign_keys(conn: apsw.Connection) -> Check:
    rows = conn.execute("PRAGMA foreign_key_check").fetchall()
    return Check("foreign keys", not rows, f"{len(rows)} violations" if rows else "ok")


def _schema_version(conn: apsw.Connection) -> Check:
    latest = migration_ids()[-1]
    found = meta.get(conn, "schema_version")
    return Check("schema version", found == latest, f"{found} (latest shipped: {latest})")


def _names(conn: apsw.Connection, kind: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}


def _tables(conn: apsw.Connection) -> Check:
    missing = sorted(set(TABLES) - _names(conn, "table"))
    return Check("tables", not missing, "missing: " + ", ".join(missing) if missing else f"{len(TABLES)} present")


def _triggers(conn: apsw.Connection) -> Check:
    expected = {f"{t}_cdc_{op}" for t in CDC_TABLES for op in ("insert", "update")}
    missing = sorted(expected - _names(conn, "trigger"))
    return Check("cdc triggers", not missing, "missing: " + ", ".join(missing) if missing else f"{len(expected)} present")


def _search_triggers(conn: apsw.Connection) -> Check:
    missing = sorted(set(SEARCH_TRIGGERS) - _names(conn, "trigger"))
    return Check("search triggers", not missing,
                 "missing: " + ", ".join(missing) if missing else f"{len(SEARCH_TRIGGERS)} present")


def _epoch(conn: apsw.Connection) -> Check:
    epoch = meta.get(conn, "db_epoch")
    return Check("db_epoch", bool(epoch), epoch or "missing")


def trigger_round_trip(conn: apsw.Connection) -> Check:
    """Insert a session under a savepoint that is rolled back: the trigger must log it.

    A savepoint rather than a transaction of its own, so it also runs inside the daemon's
    writer transaction and leaves nothing there either.
    """
    probe = "aod-selfcheck-probe"
    conn.execute("SAVEPOINT aod_selfcheck")
    try:
        conn.execute(
            "INSERT INTO sessions (id, agent, created_at, updated_at) VALUES (?, 'selfcheck', '', '')",
            (probe,),
        )
        logged = change_log.logged(conn, "session", probe)
    finally:
        conn.execute("ROLLBACK TO aod_selfcheck")
        conn.execute("RELEASE aod_selfcheck")
    return Check(ROUND_TRIP, logged == 1, "fires" if logged == 1 else f"{logged} rows logged")
