"""Retention: which old `events` and `change_log` rows go, deleted in batches with the floor.

The rules of a prune live here; the SQL is each table's own (`aod.storage.events`,
`aod.storage.change_log`, `aod.storage.forward` for what the forwarder still needs).

Both tables are pruned as a prefix in key order (ids and seqs follow commit order, and the
timestamps compared are the daemon's own, stamped at commit), so every batch is a range delete
on the primary key and `meta.retention_floor` can promise exactly: every change_log row up to
the floor is gone, every row above it is still there.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from aod.storage import change_log, forward, meta
from aod.storage import events as events_table  # `events` counts the rows a prune deletes


@dataclass(frozen=True, slots=True)
class Batch:
    events: int
    changes: int
    floor: int
    held: bool = False  # rows old enough to go were kept: the forwarder has not shipped them yet


@dataclass(frozen=True, slots=True)
class Plan:
    """What a prune with these cutoffs would delete now."""

    events: int
    changes: int
    floor_before: int
    floor_after: int
    held: bool = False


def prune_batch(conn: apsw.Connection, events_before: str, changes_before: str, limit: int) -> Batch:
    """Delete up to `limit` old events and `limit` old change_log rows; raise the floor to match.

    Runs inside the caller's write transaction, so the floor moves with the deletion.
    """
    events = changes = 0
    held = False
    last_event = events_table.old_prefix_end(conn, events_before, limit)
    # Forwarding on: nothing goes that the team store does not have yet (its cursor's change_log
    # rows and the events they name wait; the floor stops below them).
    hold = forward.hold(conn)
    if hold is not None and last_event is not None:
        first_kept = forward.first_held_event(conn, hold)
        if first_kept is not None and last_event >= first_kept:
            last_event, held = (first_kept - 1 if first_kept > 1 else None), True
    if last_event is not None:
        events = events_table.delete_through(conn, last_event)
    last_seq = change_log.old_prefix_end(conn, changes_before, limit)
    if hold is not None and last_seq is not None and last_seq > hold:
        last_seq, held = (hold or None), True
    if last_seq is not None:
        changes = change_log.delete_through(conn, last_seq)
        meta.raise_retention_floor(conn, last_seq)
    return Batch(events, changes, meta.retention_floor(conn), held)


def plan(conn: apsw.Connection, events_before: str, changes_before: str) -> Plan:
    """Count what `prune_batch` calls would delete, without deleting (for `aod db prune --dry-run`)."""
    events = events_table.old_prefix_count(conn, events_before)
    changes, last_gone = change_log.old_prefix(conn, changes_before)
    floor = meta.retention_floor(conn)
    hold = forward.hold(conn)
    held = False
    if hold is not None and last_gone is not None and last_gone > hold:
        held, last_gone = True, hold
        changes = change_log.count_through(conn, hold)
    if hold is not None and events:
        first_kept = forward.first_held_event(conn, hold)
        if first_kept is not None:
            kept = min(events, events_table.count_before(conn, first_kept))
            held, events = held or kept < events, kept
    return Plan(events, changes, floor, max(floor, last_gone or 0), held)
