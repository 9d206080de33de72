"""SQL of the `change_log` table (rows are written only by the triggers of the migrations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw
import orjson


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
    return conn.execute(
        f"SELECT {_COLUMNS} FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    ).fetchall()


def sessions_changed(conn: apsw.Connection, after: int, through: int) -> set[str]:
    """The sessions with a change_log row in (after, through]."""
    rows = conn.execute(
        "SELECT DISTINCT session_id FROM change_log WHERE seq > ? AND seq <= ? AND session_id IS NOT NULL",
        (after, through),
    )
    return {row[0] for row in rows}
