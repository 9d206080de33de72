"""SQL of forwarding: the `forward_cursor` table, this file's machine id, and reading one batch
(change_log rows after the cursor and the current rows they name) for the team store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import apsw
import orjson

from aod.storage import change_log, meta

# What each team table receives, in the order a row is read (and copied): the local columns but
# `content_key` (a dedup hash of no use elsewhere). tenant_id and machine_id are added on the way.
COLUMNS: dict[str, tuple[str, ...]] = {
    "projects": ("id", "path", "name", "origin_url", "created_at", "archived_at"),
    "sessions": ("id", "project_id", "agent", "agent_session_id", "status", "activity", "activity_at", "error",
                 "error_at", "is_alive", "termination_reason", "runtime", "runtime_handle", "pid", "workspace_path",
                 "branch", "title", "created_at", "updated_at", "last_event_at", "ended_at"),
    "events": ("uid", "id", "session_id", "agent", "kind", "tool_name", "tool_use_id", "occurred_at", "received_at",
               "duration_ms", "ok", "payload", "payload_bytes", "trimmed"),
    "prs": ("url", "session_id", "number", "state", "draft", "review_decision", "mergeability", "ci_state",
            "head_sha", "title", "updated_at"),
    "pr_checks": ("pr_url", "name", "commit_sha", "status", "url", "created_at", "updated_at"),
    "escalations": ("id", "session_id", "reaction", "priority", "message", "created_at", "acked_at"),
    # Not a change_log entity: its rows are insert-only, shipped by id after their own cursor.
    "usage": ("message_id", "request_id", "id", "session_id", "agent_session_id", "model", "input_tokens",
              "output_tokens", "cache_creation_input_tokens", "cache_creation_1h_tokens", "cache_read_input_tokens",
              "cost_usd", "occurred_at", "is_sidechain"),
}
# Stored as 0/1 (NULL: unknown) here, boolean there.
FLAGS = frozenset({"is_alive", "ok", "trimmed", "draft", "is_sidechain"})
# meta key: the last local usage id the team store committed (the usage rows' own cursor).
USAGE_CURSOR = "forward_usage_id"
# meta key, while a new team store is being backfilled: "<last event id sent>:<last event id to send>".
BACKFILL = "forward_backfill"
# Each table's local key, the positions in COLUMNS (a row read twice in one batch is sent once).
_KEYS = {"projects": (0,), "sessions": (0,), "events": (0,), "prs": (0,), "pr_checks": (0, 1, 2), "escalations": (0,),
         "usage": (0, 1)}


@dataclass
class Batch:
    """change_log rows (after, last_seq] and the current state of every row they name."""

    after: int
    last_seq: int
    changes: int
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    usage_after: int = 0
    usage_last: int = 0  # the last usage id in `rows["usage"]` (usage_after when none)
    backfill: tuple[int, int] | None = None  # (after, until) event ids, while backfilling
    backfill_last: int = 0
    more: bool = False  # a part of it stopped at the limit: the next batch is due at once

    @property
    def empty(self) -> bool:
        return not self.changes and self.usage_last == self.usage_after and self.backfill is None

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def machine_id(conn: apsw.Connection) -> str:
    value = meta.get(conn, "machine_id")
    if value is None:
        raise apsw.Error("meta.machine_id is missing: the database was not migrated")
    return value


def start(conn: apsw.Connection, target: str) -> int:
    """Where forwarding to `target` stands; a new target (or forwarding turned on) starts a cursor
    at 0, and a cursor for another target goes: only one team store is fed, and held for."""
    row = conn.execute("SELECT seq FROM forward_cursor WHERE target = ?", (target,)).fetchone()
    if row is not None:
        return int(row[0])
    conn.execute("DELETE FROM forward_cursor")
    conn.execute("DELETE FROM meta WHERE key = ?", (USAGE_CURSOR,))
    conn.execute("INSERT INTO forward_cursor (target, seq) VALUES (?, 0)", (target,))
    # A new team store gets what the file holds now, not only what changes from here: change_log
    # reaches back `retention.change_log_days`, events further. Every event up to the newest
    # (later ones come through change_log) and, with the first of them, every session, project,
    # PR, check and escalation as they are.
    top = conn.execute("SELECT max(id) FROM events").fetchone()
    meta.put(conn, BACKFILL, f"0:{int(top[0] or 0) if top else 0}")
    return 0


def backfill_state(conn: apsw.Connection) -> tuple[int, int] | None:
    value = meta.get(conn, BACKFILL)
    if value is None:
        return None
    after, _, until = value.partition(":")
    return int(after), int(until)


def usage_cursor(conn: apsw.Connection) -> int:
    return int(meta.get(conn, USAGE_CURSOR) or 0)


def advance(conn: apsw.Connection, target: str, batch: Batch, at: str) -> None:
    """Only after the team store committed `batch`; never moves back."""
    conn.execute("UPDATE forward_cursor SET seq = max(seq, ?), forwarded_at = ? WHERE target = ?",
                 (batch.last_seq, at, target))
    if batch.usage_last > batch.usage_after:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                     " CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
                     (USAGE_CURSOR, str(batch.usage_last)))
    if batch.backfill is not None:
        until = batch.backfill[1]
        if batch.backfill_last >= until:
            conn.execute("DELETE FROM meta WHERE key = ?", (BACKFILL,))
        else:
            meta.put(conn, BACKFILL, f"{batch.backfill_last}:{until}")


def release(conn: apsw.Connection) -> bool:
    """Forwarding is off: retention no longer waits for it. Whether a cursor was there."""
    conn.execute("DELETE FROM forward_cursor")
    return conn.changes() > 0


def hold(conn: apsw.Connection) -> int | None:
    """The seq retention must keep every change_log row above (None: nothing forwards)."""
    row = conn.execute("SELECT min(seq) FROM forward_cursor").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def first_held_event(conn: apsw.Connection, after: int) -> int | None:
    """The lowest event id retention must keep: named by a change_log row above `after`, or not
    backfilled yet."""
    named = change_log.first_event_after(conn, after)
    backfill = backfill_state(conn)
    if backfill is None:
        return named
    return backfill[0] + 1 if named is None else min(named, backfill[0] + 1)


@dataclass(frozen=True)
class Lag:
    cursor: int | None  # None: forwarding is off
    head: int
    rows: int
    oldest_at: str | None  # `at` of the oldest change_log row not forwarded yet
    forwarded_at: str | None
    backfill: tuple[int, int] | None = None  # (sent through, until) event ids, while backfilling


def lag(conn: apsw.Connection) -> Lag:
    head = change_log.head(conn)
    row = conn.execute("SELECT seq, forwarded_at FROM forward_cursor ORDER BY seq LIMIT 1").fetchone()
    if row is None:
        return Lag(None, head, 0, None, None)
    seq, forwarded_at = int(row[0]), row[1]
    return Lag(seq, head, max(0, head - seq), change_log.oldest_at_after(conn, seq), forwarded_at,
               backfill_state(conn))


def read_batch(conn: apsw.Connection, after: int, limit: int, usage_after: int = 0) -> Batch:
    """One read transaction: the next `limit` change_log rows and the rows they name (and their
    sessions), as they are now.

    A row changed again after its change_log row was written is read in its newer state: the team
    store gets the newest state early, and the later change_log row upserts the same state again."""
    named: dict[str, set[str]] = {"session": set(), "event": set(), "pr": set(), "check": set(), "escalation": set()}
    last = after
    changes = 0
    for seq, entity, entity_id, session_id in change_log.named_after(conn, after, limit):
        last, changes = seq, changes + 1
        if entity in named:
            named[entity].add(entity_id)
        # An event moves its session's bookkeeping (last_event_at, activity_at, updated_at) in the
        # same transaction, which makes no change_log row of its own: ship that session too.
        if session_id is not None:
            named["session"].add(session_id)
    batch = Batch(after, last, changes, usage_after=usage_after, usage_last=usage_after, more=changes >= limit)
    usage = _usage(conn, usage_after, limit)
    if usage:
        batch.rows["usage"] = usage
        batch.usage_last = int(usage[-1][COLUMNS["usage"].index("id")])
        batch.more = batch.more or len(usage) >= limit
    if changes:
        batch.rows |= _named(conn, named)
    backfill = backfill_state(conn)
    if backfill is not None:
        _backfill(conn, batch, backfill, limit)
    return batch


def _backfill(conn: apsw.Connection, batch: Batch, backfill: tuple[int, int], limit: int) -> None:
    """The next events up to the backfill's end (and, with its first batch, the small tables)."""
    after, until = backfill
    batch.backfill = backfill
    events = _flags("events", conn.execute(
        f"SELECT {', '.join(COLUMNS['events'])} FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
        (after, until, limit)))
    batch.backfill_last = int(events[-1][COLUMNS["events"].index("id")]) if len(events) >= limit else until
    batch.more = batch.more or batch.backfill_last < until
    found = {"events": events}
    if after == 0:
        for table in ("projects", "sessions", "prs", "pr_checks", "escalations"):
            found[table] = _flags(table, conn.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table}"))
    for table, rows in found.items():
        batch.rows[table] = _union(table, batch.rows.get(table, []), rows)


def _union(table: str, first: list[tuple[Any, ...]], second: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Both lists' rows, each key once (one INSERT … ON CONFLICT cannot touch a row twice)."""
    key = _KEYS[table]
    merged = {tuple(r[i] for i in key): r for r in first}
    for r in second:
        merged.setdefault(tuple(r[i] for i in key), r)
    return list(merged.values())


def _named(conn: apsw.Connection, named: dict[str, set[str]]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "projects": _select(conn, "projects", "id IN (SELECT project_id FROM sessions WHERE id IN"
                            " (SELECT value FROM json_each(?)))", named["session"]),
        "sessions": _select(conn, "sessions", "id IN (SELECT value FROM json_each(?))", named["session"]),
        "events": _select(conn, "events", "id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))", named["event"]),
        "prs": _select(conn, "prs", "url IN (SELECT value FROM json_each(?))", named["pr"]),
        # A check's entity_id joins pr_url, name and commit_sha with newlines (0001_schema's cdc_pr_checks).
        "pr_checks": _select(conn, "pr_checks", "pr_url || char(10) || name || char(10) || commit_sha IN"
                             " (SELECT value FROM json_each(?))", named["check"]),
        "escalations": _select(conn, "escalations", "id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))",
                               named["escalation"]),
    }


def _usage(conn: apsw.Connection, after: int, limit: int) -> list[tuple[Any, ...]]:
    """The next usage rows by id (a database from before migration 0008 has no usage table)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage'").fetchone() is None:
        return []
    return _flags("usage", conn.execute(
        f"SELECT {', '.join(COLUMNS['usage'])} FROM usage WHERE id > ? ORDER BY id LIMIT ?", (after, limit)))


def _select(conn: apsw.Connection, table: str, where: str, keys: set[str]) -> list[tuple[Any, ...]]:
    if not keys:
        return []
    columns = COLUMNS[table]
    return _flags(table, conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}",
                                      (orjson.dumps(sorted(keys)).decode(),)))


def _flags(table: str, rows: Any) -> list[tuple[Any, ...]]:
    flags = [i for i, c in enumerate(COLUMNS[table]) if c in FLAGS]
    if not flags:
        return [tuple(r) for r in rows]
    out = []
    for r in rows:
        values = list(r)
        for i in flags:
            if values[i] is not None:
                values[i] = bool(values[i])
        out.append(tuple(values))
    return out
