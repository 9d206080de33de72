"""The indexes of migration 0007: every change_log query still reads an index after its two
unused indexes went, and the events listing by kind or tool reads its keyset order from one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apsw
import pytest

from aod.storage import change_log, events, keyset, retention
from tests.helpers.rows import T0, insert_event, seed_session

Traced = list[tuple[str, Any]]


def _traced(conn: apsw.Connection, run: Callable[[], object]) -> Traced:
    ran: Traced = []
    conn.exec_trace = lambda _cursor, sql, bindings: ran.append((sql, bindings)) or True
    try:
        run()
    finally:
        conn.exec_trace = None
    return ran


def _plan(conn: apsw.Connection, sql: str, bindings: Any) -> str:
    return " | ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, bindings))


def _seed(conn: apsw.Connection) -> None:
    seed_session(conn)
    for n in range(3):
        insert_event(conn, f"uid-{n}")


def test_the_unused_change_log_indexes_are_gone_and_the_listing_ones_exist(conn: apsw.Connection) -> None:
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not names & {"change_log_by_at", "change_log_by_session", "events_by_kind_time", "events_by_tool_time"}
    assert {"events_by_kind", "events_by_tool"} <= names


def test_every_change_log_query_reads_an_index(conn: apsw.Connection) -> None:
    _seed(conn)  # the session insert wrote change_log rows
    ran = _traced(conn, lambda: (
        change_log.head(conn),
        change_log.rows_after(conn, 0, 100),
        change_log.sessions_changed(conn, 0, 10),
        retention.plan(conn, T0, "2026-11-22T10:00:00.000Z"),
        retention.prune_batch(conn, T0, "2099-01-01T00:00:00.000Z", 100),
    ))
    on_change_log = [(sql, b) for sql, b in ran if "FROM change_log" in sql]
    # rows_after, sessions_changed, the plan's two, the prune's select and delete
    assert len(on_change_log) >= 5, ran
    for sql, bindings in on_change_log:
        plan = _plan(conn, sql, bindings)
        if "count(*)" in sql and "WHERE" not in sql:
            continue  # the plan's count when nothing is kept: all rows, by design
        # A range of the primary key, or its walk in order that stops at LIMIT (the rowid
        # table is that order): neither needs another index nor sorts.
        walks_in_order = plan == "SCAN change_log" and "ORDER BY seq LIMIT" in sql
        assert "INTEGER PRIMARY KEY" in plan or walks_in_order, (sql, plan)
        assert "TEMP B-TREE FOR ORDER BY" not in plan, (sql, plan)


@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize(("flt", "index"), [
    (events.EventFilter(kinds=("PreToolUse",)), "events_by_kind"),
    (events.EventFilter(tool="Bash"), "events_by_tool"),
    (events.EventFilter(kinds=("PreToolUse",), tool="Bash"), "events_by_"),
])
def test_listing_by_kind_or_tool_reads_its_order_from_an_index(
    conn: apsw.Connection, flt: events.EventFilter, index: str, ascending: bool,
) -> None:
    _seed(conn)
    for cursor in (None, keyset.encode([2])):
        ran = _traced(conn, lambda c=cursor: events.listing(conn, flt, 50, c, ascending=ascending))
        (sql, bindings), = [(s, b) for s, b in ran if "FROM events" in s]
        plan = _plan(conn, sql, bindings)
        assert index in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    rows, _ = events.listing(conn, flt, 2, None, ascending=ascending)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids, reverse=not ascending) and len(ids) == 2
