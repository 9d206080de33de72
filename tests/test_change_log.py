"""Reading change_log and meta: what the CDC poller will build on."""

from __future__ import annotations

import apsw
import pytest

from aod.storage import change_log, meta
from aod.storage.migrate import migration_ids
from tests.helpers.rows import insert_event, seed_session


def test_after_returns_changes_in_seq_order_with_parsed_data(conn: apsw.Connection) -> None:
    with conn:
        seed_session(conn)
        for i in range(5):
            insert_event(conn, f"u{i}")
    changes = change_log.after(conn, 0)
    assert [c.seq for c in changes] == [1, 2, 3, 4, 5, 6]
    assert changes[0].entity == "session" and changes[0].data["id"] == "proj-1"
    assert [c.data["uid"] for c in changes[1:]] == [f"u{i}" for i in range(5)]
    assert [c.seq for c in change_log.after(conn, 2, limit=2)] == [3, 4]
    assert change_log.after(conn, 6) == []


def test_head_never_goes_back_after_pruning(conn: apsw.Connection) -> None:
    assert change_log.head(conn) == 0
    with conn:
        seed_session(conn)
        insert_event(conn, "a")
    assert change_log.head(conn) == 2
    with conn:
        conn.execute("DELETE FROM change_log")
        insert_event(conn, "b")
    # AUTOINCREMENT: a pruned seq is never handed out again, so SSE cursors stay unambiguous.
    assert change_log.head(conn) == 3
    assert [c.seq for c in change_log.after(conn, 0)] == [3]


def test_meta_values(conn: apsw.Connection) -> None:
    assert len(meta.db_epoch(conn)) == 16
    assert meta.retention_floor(conn) == 0
    assert meta.get(conn, "schema_version") == migration_ids()[-1]
    assert meta.get(conn, "no-such-key") is None
    conn.execute("DELETE FROM meta WHERE key = 'db_epoch'")
    with pytest.raises(apsw.Error, match="not migrated"):
        meta.db_epoch(conn)
