"""SQL of retention: which old `events` and `change_log` rows go, and deleting them in batches.

Both tables are pruned as a prefix in key order (ids and seqs follow commit order, and the
timestamps compared are the daemon's own, stamped at commit), so every batch is a range delete
on the primary key and `meta.retention_floor` can promise exactly: every change_log row up to
the floor is gone, every row above it is still there.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from aod.storage import meta
from aod.storage.rows import only_row


@dataclass(frozen=True, slots=True)
class Batch:
    events: int
    changes: int
    floor: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What a prune with these cutoffs would delete now."""

    events: int
    changes: int
    floor_before: int
    floor_after: int


def _prefix_end(conn: apsw.Connection, sql: str, cutoff: str, limit: int) -> int | None:
    """The last key of the leading run of rows stamped before `cutoff` (at most `limit` rows)."""
    last = None
    for key, stamp in conn.execute(sql, (limit,)):
        if stamp >= cutoff:
            break
        last = key
    return last


def prune_batch(conn: apsw.Connection, events_before: str, changes_before: str, limit: int) -> Batch:
    """Delete up to `limit` old events and `limit` old change_log rows; raise the floor to match.

    Runs inside the caller's write transaction, so the floor moves with the deletion.
    """
    events = changes = 0
    last_event = _prefix_end(conn, "SELECT id, received_at FROM events ORDER BY id LIMIT ?", events_before, limit)
    if last_event is not None:
        conn.execute("DELETE FROM events WHERE id <= ?", (last_event,))
        events = conn.changes()
    last_seq = _prefix_end(conn, "SELECT seq, at FROM change_log ORDER BY seq LIMIT ?", changes_before, limit)
    if last_seq is not None:
        conn.execute("DELETE FROM change_log WHERE seq <= ?", (last_seq,))
        changes = conn.changes()
        meta.raise_retention_floor(conn, last_seq)
    return Batch(events, changes, meta.retention_floor(conn))


def _old_prefix(conn: apsw.Connection, table: str, key: str, stamp: str, cutoff: str) -> tuple[int, int | None]:
    """(row count, last key) of the leading run, in key order, of rows stamped before `cutoff`."""
    # The unary `+` keeps SQLite walking the primary key (the prefix) instead of the stamp's index.
    kept = conn.execute(f"SELECT {key} FROM {table} WHERE +{stamp} >= ? ORDER BY {key} LIMIT 1", (cutoff,)).fetchone()
    found: tuple[int, int | None]
    if kept is None:
        found = only_row(conn.execute(f"SELECT count(*), max({key}) FROM {table}"))
    else:
        found = only_row(conn.execute(f"SELECT count(*), max({key}) FROM {table} WHERE {key} < ?", (kept[0],)))
    return found


def plan(conn: apsw.Connection, events_before: str, changes_before: str) -> Plan:
    """Count what `prune_batch` calls would delete, without deleting (for `aod db prune --dry-run`)."""
    events, _ = _old_prefix(conn, "events", "id", "received_at", events_before)
    changes, last_gone = _old_prefix(conn, "change_log", "seq", "at", changes_before)
    floor = meta.retention_floor(conn)
    return Plan(events, changes, floor, max(floor, last_gone or 0))
