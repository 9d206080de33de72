"""The SQL of transcript usage: one row per assistant message, the per-file read offsets, and each
session's totals, kept in the transaction that inserts its rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import orjson

from aod.storage import events, sessions
from aod.storage.rows import dicts, one

AGENT = "claude-code"


@dataclass(frozen=True)
class UsageRow:
    message_id: str
    request_id: str
    agent_session_id: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_creation_1h_tokens: int
    cache_read_input_tokens: int
    cost_usd: float | None
    occurred_at: str
    is_sidechain: bool
    session_id: str | None = None  # the aod session when the caller knows it; else by agent session id


@dataclass(frozen=True)
class Offset:
    path: str
    session_id: str | None
    offset: int
    inode: int | None
    fingerprint: str | None


_INSERT = (
    "INSERT OR IGNORE INTO usage (message_id, request_id, session_id, agent_session_id, model, input_tokens,"
    " output_tokens, cache_creation_input_tokens, cache_creation_1h_tokens, cache_read_input_tokens, cost_usd,"
    " occurred_at, is_sidechain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Totals:
    def __init__(self) -> None:
        self.messages = self.input = self.output = self.creation = self.read = 0
        self.cost = self.sidechain_cost = 0.0
        self.unpriced = self.sidechain = 0
        self.models: dict[str, int] = {}

    def add(self, row: UsageRow) -> None:
        self.messages += 1
        self.input += row.input_tokens
        self.output += row.output_tokens
        self.creation += row.cache_creation_input_tokens
        self.read += row.cache_read_input_tokens
        self.models[row.model] = self.models.get(row.model, 0) + 1
        if row.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost += row.cost_usd
        if row.is_sidechain:
            self.sidechain += 1
            self.sidechain_cost += row.cost_usd or 0.0


def store(conn: apsw.Connection, rows: Iterable[UsageRow], now: str, offset: Offset | None = None) -> int:
    """Insert the rows not stored yet, add them to their sessions' totals and move the file's
    offset, all in the caller's transaction. Returns how many rows were new."""
    totals: dict[str, _Totals] = {}
    aliases: dict[str, str | None] = {}
    added = 0
    for row in rows:
        session_id = row.session_id
        if session_id is None and row.agent_session_id is not None:
            if row.agent_session_id not in aliases:
                aliases[row.agent_session_id] = sessions.by_alias(conn, AGENT, row.agent_session_id)
            session_id = aliases[row.agent_session_id]
        conn.execute(_INSERT, (
            row.message_id, row.request_id, session_id, row.agent_session_id, row.model, row.input_tokens,
            row.output_tokens, row.cache_creation_input_tokens, row.cache_creation_1h_tokens,
            row.cache_read_input_tokens, row.cost_usd, row.occurred_at, int(row.is_sidechain),
        ))
        if conn.changes() == 0:
            continue  # the same message, written again
        added += 1
        if session_id is not None:
            totals.setdefault(session_id, _Totals()).add(row)
    for session_id, t in totals.items():
        _add_totals(conn, session_id, t, now)
    if offset is not None:
        conn.execute(
            "INSERT INTO transcript_offsets (path, session_id, offset, inode, fingerprint, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET session_id = coalesce(excluded.session_id,"
            " session_id), offset = excluded.offset, inode = excluded.inode, fingerprint = excluded.fingerprint,"
            " updated_at = excluded.updated_at",
            (offset.path, offset.session_id, offset.offset, offset.inode, offset.fingerprint, now),
        )
    return added


def _add_totals(conn: apsw.Connection, session_id: str, t: _Totals, now: str) -> None:
    found = conn.execute("SELECT models FROM session_usage WHERE session_id = ?", (session_id,)).fetchone()
    models: dict[str, int] = orjson.loads(found[0]) if found else {}
    for model, n in t.models.items():
        models[model] = models.get(model, 0) + n
    conn.execute(
        "INSERT INTO session_usage (session_id, messages, input_tokens, output_tokens, cache_creation_input_tokens,"
        " cache_read_input_tokens, cost_usd, unpriced_messages, sidechain_messages, sidechain_cost_usd, models,"
        " updated_at) VALUES (:s, :m, :i, :o, :c, :r, :cost, :u, :sm, :sc, :models, :now)"
        " ON CONFLICT (session_id) DO UPDATE SET messages = messages + :m, input_tokens = input_tokens + :i,"
        " output_tokens = output_tokens + :o, cache_creation_input_tokens = cache_creation_input_tokens + :c,"
        " cache_read_input_tokens = cache_read_input_tokens + :r, cost_usd = cost_usd + :cost,"
        " unpriced_messages = unpriced_messages + :u, sidechain_messages = sidechain_messages + :sm,"
        " sidechain_cost_usd = sidechain_cost_usd + :sc, models = :models, updated_at = :now",
        {"s": session_id, "m": t.messages, "i": t.input, "o": t.output, "c": t.creation, "r": t.read,
         "cost": t.cost, "u": t.unpriced, "sm": t.sidechain, "sc": t.sidechain_cost,
         "models": orjson.dumps(models).decode(), "now": now},
    )


def session_totals(conn: apsw.Connection, session_id: str) -> dict[str, Any] | None:
    found = one(conn.execute("SELECT * FROM session_usage WHERE session_id = ?", (session_id,)))
    if found is not None:
        found["models"] = orjson.loads(found["models"])
    return found


def totals_for(conn: apsw.Connection, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """session_totals of many sessions (a listing's page) in one query."""
    if not session_ids:
        return {}
    marks = ",".join("?" * len(session_ids))
    found = dicts(conn.execute(f"SELECT * FROM session_usage WHERE session_id IN ({marks})", list(session_ids)))
    for item in found:
        item["models"] = orjson.loads(item["models"])
    return {item["session_id"]: item for item in found}


def offsets(conn: apsw.Connection) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in dicts(conn.execute("SELECT * FROM transcript_offsets"))}


def live_transcripts(conn: apsw.Connection, ended_since: str) -> list[tuple[str, str]]:
    """(session id, transcript path) of every session not ended (or ended since `ended_since`: the
    last lines can land after SessionEnd), from its latest event that names one."""
    rows = conn.execute(
        "SELECT s.id, (SELECT json_extract(e.payload, '$.transcript_path') FROM events e"
        "  WHERE e.session_id = s.id AND e.payload LIKE '%\"transcript_path\"%' ORDER BY e.id DESC LIMIT 1)"
        " FROM sessions s WHERE (s.ended_at IS NULL OR s.ended_at >= ?) AND s.agent = ?",
        (ended_since, AGENT),
    )
    return [(sid, path) for sid, path in rows if isinstance(path, str) and path]


# --- reports -------------------------------------------------------------------------------------

SUMS = (
    "count(*) AS messages, sum(u.input_tokens) AS input_tokens, sum(u.output_tokens) AS output_tokens,"
    " sum(u.cache_creation_input_tokens) AS cache_creation_input_tokens,"
    " sum(u.cache_read_input_tokens) AS cache_read_input_tokens, total(u.cost_usd) AS cost_usd,"
    " sum(u.cost_usd IS NULL) AS unpriced_messages, total(CASE WHEN u.is_sidechain THEN u.cost_usd END)"
    " AS sidechain_cost_usd, sum(u.is_sidechain) AS sidechain_messages, group_concat(DISTINCT u.model) AS models"
)
# The key of each grouping. Day and month are the daemon's local calendar, as ccusage reports them.
KEYS = {
    "day": "strftime('%Y-%m-%d', u.occurred_at, 'localtime')",
    "month": "strftime('%Y-%m', u.occurred_at, 'localtime')",
    "model": "u.model",
    "project": "s.project_id",
    "session": "u.session_id",
}


def _where(since: str | None, until: str | None) -> tuple[str, list[str]]:
    terms, args = [], []
    if since is not None:
        terms.append("u.occurred_at >= ?")
        args.append(since)
    if until is not None:
        terms.append("u.occurred_at < ?")
        args.append(until)
    return (" WHERE " + " AND ".join(terms)) if terms else "", args


def _models(item: dict[str, Any]) -> dict[str, Any]:
    item["models"] = sorted(item["models"].split(",")) if item["models"] else []
    return item


def grouped(conn: apsw.Connection, key: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    where, args = _where(since, until)
    sql = (f"SELECT {KEYS[key]} AS key, {SUMS} FROM usage u LEFT JOIN sessions s ON s.id = u.session_id"
           f"{where} GROUP BY 1 ORDER BY 1")
    return [_models(item) for item in dicts(conn.execute(sql, args))]


def total(conn: apsw.Connection, since: str | None, until: str | None) -> dict[str, Any]:
    where, args = _where(since, until)
    found = dicts(conn.execute(f"SELECT {SUMS} FROM usage u{where}", args))[0]
    return _models({k: (v if v is not None else 0) if k != "models" else v for k, v in found.items()})


def timeline(conn: apsw.Connection, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """Every row of the window in time order, for the 5-hour blocks."""
    where, args = _where(since, until)
    return dicts(conn.execute(
        "SELECT u.occurred_at, u.model, u.input_tokens, u.output_tokens, u.cache_creation_input_tokens,"
        f" u.cache_read_input_tokens, u.cost_usd, u.is_sidechain FROM usage u{where} ORDER BY u.occurred_at",
        args,
    ))


def unpriced_models(conn: apsw.Connection, since: str | None, until: str | None) -> Sequence[str]:
    where, args = _where(since, until)
    extra = " AND " if where else " WHERE "
    return [r[0] for r in conn.execute(
        f"SELECT DISTINCT u.model FROM usage u{where}{extra}u.cost_usd IS NULL ORDER BY 1", args)]


def without_branch(conn: apsw.Connection, agent_session_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """agent session id -> its aod session, for those whose session has no branch yet."""
    found = {}
    for agent_session_id in agent_session_ids:
        session_id = sessions.by_alias(conn, AGENT, agent_session_id)
        row = sessions.get(conn, session_id) if session_id is not None else None
        if row is not None and row["branch"] is None:
            found[agent_session_id] = row
    return found


def reported_by_hooks(conn: apsw.Connection, agent_session_ids: Iterable[str], import_prefix: str) -> set[str]:
    """The agent session ids whose aod session has an event its hooks sent (not an import's)."""
    found = set()
    for agent_session_id in agent_session_ids:
        session_id = sessions.by_alias(conn, AGENT, agent_session_id)
        if session_id is None:
            continue
        if events.has_uid_outside(conn, session_id, import_prefix):
            found.add(agent_session_id)
    return found
