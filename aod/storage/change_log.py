"""SQL of the `change_log` table (rows are written only by the triggers of the migrations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import apsw
import orjson

from aod.storage.rows import only_row, scalar_int


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    at: str
    entity: str
    op: str
    entity_id: str
    session_id: str | None
    project_id: str | None
    data: dict[str, Any]


# A change_log row as selected, `data` still JSON text.
Row = tuple[int, str, str, str, str, str | None, str | None, str]
_COLUMNS = "seq, at, entity, op, entity_id, session_id, project_id, data"


def head(conn: apsw.Connection) -> int:
    """The highest seq ever assigned (AUTOINCREMENT never reuses one, even after pruning)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'").fetchone()
    return 0 if row is None else int(row[0])


def after(conn: apsw.Connection, seq: int, limit: int = 1000) -> list[Change]:
    return [_change(row) for row in rows_after(conn, seq, limit)]


def _change(row: tuple[Any, ...]) -> Change:
    seq, at, entity, op, entity_id, session_id, project_id, data = row
    return Change(seq, at, entity, op, entity_id, session_id, project_id, orjson.loads(data))


def rows_after(conn: apsw.Connection, seq: int, limit: int) -> list[Row]:
    """The rows after `seq` with `data` left as the JSON text the trigger wrote (the stream embeds it)."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
    # apsw types a row loosely; the table's NOT NULL columns and the triggers make it a Row.
    return cast(list[Row], rows.fetchall())


def sessions_changed(conn: apsw.Connection, after: int, through: int) -> set[str]:
    """The sessions with a change_log row in (after, through]."""
    rows = conn.execute(
        "SELECT DISTINCT session_id FROM change_log WHERE seq > ? AND seq <= ? AND session_id IS NOT NULL",
        (after, through),
    )
    return {row[0] for row in rows}


def logged(conn: apsw.Connection, entity: str, entity_id: str) -> int:
    """How many rows one entity has (the self-check's trigger round trip)."""
    return scalar_int(conn.execute(
        "SELECT count(*) FROM change_log WHERE entity = ? AND entity_id = ?", (entity, entity_id)
    ))


# --- retention: the oldest rows go as a prefix in seq order (aod.storage.retention) -----------


def old_prefix_end(conn: apsw.Connection, before: str, limit: int) -> int | None:
    """The last seq of the leading run of rows stamped before `before`, at most `limit` rows."""
    last: int | None = None
    for seq, at in conn.execute("SELECT seq, at FROM change_log ORDER BY seq LIMIT ?", (limit,)):
        if at >= before:
            break
        last = seq
    return last


def delete_through(conn: apsw.Connection, seq: int) -> int:
    """Delete every row up to `seq`; how many went."""
    conn.execute("DELETE FROM change_log WHERE seq <= ?", (seq,))
    return conn.changes()


def old_prefix(conn: apsw.Connection, before: str) -> tuple[int, int | None]:
    """(row count, last seq) of the leading run, in seq order, of rows stamped before `before`."""
    # The unary `+` keeps SQLite walking the primary key (the prefix) instead of an index on `at`.
    kept = conn.execute("SELECT seq FROM change_log WHERE +at >= ? ORDER BY seq LIMIT 1", (before,)).fetchone()
    found: tuple[int, int | None]
    if kept is None:
        found = only_row(conn.execute("SELECT count(*), max(seq) FROM change_log"))
    else:
        found = only_row(conn.execute("SELECT count(*), max(seq) FROM change_log WHERE seq < ?", (kept[0],)))
    return found


# --- forwarding to the team store (aod.storage.forward) and what retention holds for it ------


def named_after(conn: apsw.Connection, after: int, limit: int) -> list[tuple[int, str, str, str | None]]:
    """(seq, entity, entity_id, session_id) of the next `limit` rows after `after`."""
    rows = conn.execute(
        "SELECT seq, entity, entity_id, session_id FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    )
    return cast(list[tuple[int, str, str, str | None]], rows.fetchall())


def oldest_at_after(conn: apsw.Connection, seq: int) -> str | None:
    """`at` of the first row after `seq` (None: there is none)."""
    row = conn.execute("SELECT at FROM change_log WHERE seq > ? ORDER BY seq LIMIT 1", (seq,)).fetchone()
    return None if row is None else str(row[0])


def first_event_after(conn: apsw.Connection, after: int) -> int | None:
    """The lowest event id a row above `after` names."""
    row = conn.execute(
        "SELECT min(CAST(entity_id AS INTEGER)) FROM change_log WHERE seq > ? AND entity = 'event'", (after,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def count_through(conn: apsw.Connection, seq: int) -> int:
    """How many rows are left up to `seq`."""
    return scalar_int(conn.execute("SELECT count(*) FROM change_log WHERE seq <= ?", (seq,)))
