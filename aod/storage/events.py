"""SQL of the `events` table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from aod.storage import keyset
from aod.storage.rows import dicts, one, scalar_int

# The list view leaves the payload out: it can be 64 KiB per row.
SUMMARY_COLUMNS = (
    "id, uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at, received_at, duration_ms, ok,"
    " payload_bytes, trimmed"
)


def existing_uids(conn: apsw.Connection, uids: list[str]) -> set[str]:
    return _present(conn, "SELECT uid FROM events WHERE uid IN ({})", uids, ())


def has_uid_outside(conn: apsw.Connection, session_id: str, prefix: str) -> bool:
    """Whether the session has an event whose uid does not start with `prefix` (an import's uids do)."""
    found = conn.execute("SELECT 1 FROM events WHERE session_id = ? AND substr(uid, 1, ?) != ? LIMIT 1",
                         (session_id, len(prefix), prefix)).fetchone()
    return found is not None


def content_keys_since(conn: apsw.Connection, since: str, stop_before: str) -> list[tuple[str, str]]:
    """(content_key, received_at) of the events received since `since`, newest first.

    Walks back by id instead of using an index on received_at (there is none): ids follow commit
    order and received_at is stamped just before the commit, so the walk stops at the first row
    older than `stop_before` (a little before `since`, for writes that overlapped).
    """
    found: list[tuple[str, str]] = []
    for key, received_at in conn.execute("SELECT content_key, received_at FROM events ORDER BY id DESC"):
        if received_at < stop_before:
            break
        if key is not None and received_at >= since:
            found.append((key, received_at))
    return found


def _present(conn: apsw.Connection, sql: str, values: list[str], extra: tuple[Any, ...]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start:start + _IN_CHUNK]
        found.update(r[0] for r in conn.execute(sql.format(", ".join("?" * len(chunk))), (*chunk, *extra)))
    return found


# Bound the number of parameters of one IN (...) query.
_IN_CHUNK = 500
_INSERT_COLUMNS = (
    "uid, session_id, agent, kind, tool_name, tool_use_id, occurred_at, received_at,"
    " duration_ms, ok, content_key, payload, payload_bytes, trimmed"
)
# Rows go in as one INSERT of up to this many (one statement text per count, all in apsw's
# statement cache): one sqlite3_step, and one release of the GIL, per statement instead of per
# row. Measured on the writer thread against executemany of the same rows: 17.7 -> 14.7 µs of
# CPU per event at 15 events per transaction, 12.3 -> 9.4 µs at 500.
_ROWS_PER_INSERT = 16
_INSERTS = {
    n: f"INSERT INTO events ({_INSERT_COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n)
    for n in range(1, _ROWS_PER_INSERT + 1)
}


def insert_many(conn: apsw.Connection, rows: list[list[Any]]) -> None:
    """`rows` in the column order of `_INSERT_COLUMNS`, stored in that order."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start:start + _ROWS_PER_INSERT]
        conn.execute(_INSERTS[len(part)], [value for row in part for value in row])


def tool_use_partner(conn: apsw.Connection, session_id: str, tool_use_id: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The earliest event of `kinds` for one tool call (PreToolUse for a Post, or the reverse)."""
    return one(
        conn.execute(
            f"SELECT id, kind, occurred_at, duration_ms FROM events WHERE tool_use_id = ? AND session_id = ?"
            f" AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY id LIMIT 1",
            (tool_use_id, session_id, *kinds),
        )
    )


def set_duration(conn: apsw.Connection, event_id: int, duration_ms: int) -> None:
    conn.execute("UPDATE events SET duration_ms = ? WHERE id = ? AND duration_ms IS NULL", (duration_ms, event_id))


def get(conn: apsw.Connection, event_id: int) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)))


@dataclass(frozen=True)
class EventFilter:
    session: str | None = None
    kinds: tuple[str, ...] = ()
    tool: str | None = None
    since: str | None = None
    until: str | None = None


def listing(
    conn: apsw.Connection, flt: EventFilter, limit: int, cursor: str | None, *, ascending: bool = False, payload: bool = False
) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset on id: newest first by default, or oldest first for a timeline."""
    query = (
        keyset.Query(f"SELECT {SUMMARY_COLUMNS}{', payload' if payload else ''} FROM events")
        .where_if(flt.session, "session_id = ?")
        .where_in("kind", flt.kinds)
        .where_if(flt.tool, "tool_name = ?")
        .where_if(flt.since, "occurred_at >= ?")
        .where_if(flt.until, "occurred_at < ?")
    )
    if cursor:
        (after_id,) = keyset.decode(cursor, (int,))
        query.where("id > ?" if ascending else "id < ?", after_id)
    return query.page(conn, f"id {'ASC' if ascending else 'DESC'}", limit, lambda row: [row["id"]])


def count(conn: apsw.Connection) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM events"))


def move_to_session(conn: apsw.Connection, from_session: str, to_session: str) -> None:
    """Re-file a session's events under another one (the throwaway start of a --resume)."""
    conn.execute("UPDATE events SET session_id = ? WHERE session_id = ?", (to_session, from_session))


# --- retention: the oldest events go as a prefix in id order (aod.storage.retention) -----------


def old_prefix_end(conn: apsw.Connection, before: str, limit: int) -> int | None:
    """The last id of the leading run of events received before `before`, at most `limit` of them."""
    last: int | None = None
    for event_id, received_at in conn.execute("SELECT id, received_at FROM events ORDER BY id LIMIT ?", (limit,)):
        if received_at >= before:
            break
        last = event_id
    return last


def delete_through(conn: apsw.Connection, event_id: int) -> int:
    """Delete every event up to `event_id`; how many went."""
    conn.execute("DELETE FROM events WHERE id <= ?", (event_id,))
    return conn.changes()


def old_prefix_count(conn: apsw.Connection, before: str) -> int:
    """How many events lead the id order received before `before`."""
    # The unary `+` keeps SQLite walking the primary key (the prefix) instead of the stamp's index.
    kept = conn.execute("SELECT id FROM events WHERE +received_at >= ? ORDER BY id LIMIT 1", (before,)).fetchone()
    if kept is None:
        return scalar_int(conn.execute("SELECT count(*) FROM events"))
    return count_before(conn, int(kept[0]))


def count_before(conn: apsw.Connection, event_id: int) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM events WHERE id < ?", (event_id,)))


# --- look back: one session's events in id order, a page at a time (aod/api/replay_routes.py,
# export_routes.py). A page is read in one short read transaction, so a slow client of a long
# replay or export holds no snapshot open between pages.


def stream_rows(conn: apsw.Connection, session_id: str, after_id: int, limit: int) -> list[Any]:
    """(id, session_id, project_id, data, occurred_at) after `after_id`: `data` is the stream's
    JSON of the event (the `cdc_events` view, what the change_log trigger stores)."""
    return conn.execute(
        "SELECT entity_id, session_id, project_id, data, json_extract(data, '$.occurred_at') FROM cdc_events"
        " WHERE session_id = ? AND entity_id > ? ORDER BY entity_id LIMIT ?",
        (session_id, after_id, limit),
    ).fetchall()


def first_id_from(conn: apsw.Connection, session_id: str, at: str) -> int | None:
    """The first of the session's events (in id order) that occurred at or after `at`."""
    row = conn.execute("SELECT id FROM events WHERE session_id = ? AND occurred_at >= ? ORDER BY id LIMIT 1",
                       (session_id, at)).fetchone()
    return int(row[0]) if row else None


def full_rows(conn: apsw.Connection, session_id: str, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The session's events after `after_id` with every column but the dedup key, payload included."""
    return dicts(conn.execute(
        f"SELECT {SUMMARY_COLUMNS}, payload FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?",
        (session_id, after_id, limit),
    ))
