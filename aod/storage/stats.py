"""The SQL of `GET /v1/stats`: sessions by status, events per minute, per-tool counts and latency
over a window of `events.occurred_at`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import apsw

from aod.timefmt import parse_iso

PERCENTILES = (50, 95)


@dataclass(frozen=True)
class StatsFilter:
    since: str  # stored form (aod.timefmt), inclusive
    until: str  # exclusive
    project: str | None = None
    session: str | None = None


def _narrowed(flt: StatsFilter) -> str:
    """The session / project terms of every event query. The unary `+` keeps SQLite on the window's
    range of events_for_stats: through events_by_session it would read every event a project's
    sessions ever had, from the table (bench/stats.py: 200 ms for one project), while the window's
    range costs at most what the unfiltered question costs."""
    where = ""
    if flt.session is not None:
        where += " AND +session_id = :session"
    if flt.project is not None:
        where += " AND +session_id IN (SELECT id FROM sessions WHERE project_id = :project)"
    return where


def event_scope(flt: StatsFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of the window's events, and its bindings."""
    args = {"since": flt.since, "until": flt.until, "session": flt.session, "project": flt.project}
    return "occurred_at >= :since AND occurred_at < :until" + _narrowed(flt), args


def sessions_by_status(conn: apsw.Connection, flt: StatsFilter) -> dict[str, int]:
    """Sessions that lived during the window (created before its end, not ended before its start),
    counted by the status they have now."""
    where, args = "created_at < ? AND (ended_at IS NULL OR ended_at >= ?)", [flt.until, flt.since]
    if flt.session is not None:
        where += " AND id = ?"
        args.append(flt.session)
    if flt.project is not None:
        where += " AND project_id = ?"
        args.append(flt.project)
    rows = conn.execute(f"SELECT status, count(*) FROM sessions WHERE {where} GROUP BY status ORDER BY status", args)
    return dict(rows)


def minute_of(stored: str) -> str:
    return stored[:16]  # "YYYY-MM-DDTHH:MM" of the fixed-width stored form


def events_per_minute(conn: apsw.Connection, flt: StatsFilter) -> list[dict[str, Any]]:
    """One entry per minute from the one holding `since` to the one holding the window's last
    instant, zeros included, so a chart has no gaps."""
    first = parse_iso(minute_of(flt.since) + ":00Z")
    # Counted, not stepped past the last: a minute after 9999-12-31T23:59 is no datetime.
    minutes = (parse_iso(flt.until) - timedelta(microseconds=1) - first) // timedelta(minutes=1) + 1
    _, args = event_scope(flt)
    # One index range count per minute: 4x faster than GROUP BY substr(occurred_at, 1, 16), which
    # computes a substring for every event (bench/stats.py: 24 h, 70,000 events, 14 -> 3.5 ms).
    # "YYYY-MM-DDTHH:MM" sorts before every stored instant of that minute; strftime has no minute
    # after 9999-12-31T23:59 (NULL), where `until` is the end.
    rows = conn.execute(
        "WITH RECURSIVE m(i, t) AS (SELECT 0, :first UNION ALL"
        "  SELECT i + 1, strftime('%Y-%m-%dT%H:%M', t, '+1 minute') FROM m WHERE i + 1 < :minutes)"
        " SELECT t, (SELECT count(*) FROM events WHERE occurred_at >= max(t, :since)"
        "  AND occurred_at < min(coalesce(strftime('%Y-%m-%dT%H:%M', t, '+1 minute'), :until), :until)"
        f"  {_narrowed(flt)}) FROM m ORDER BY i",
        {**args, "first": minute_of(flt.since), "minutes": minutes},
    )
    return [{"minute": t + ":00Z", "count": n} for t, n in rows]


def tools(conn: apsw.Connection, flt: StatsFilter) -> list[dict[str, Any]]:
    """Per tool, most used first: events, failures (ok false), and nearest-rank p50 / p95 of the
    durations that are known (null when none is)."""
    where, args = event_scope(flt)
    out = {
        name: {"tool_name": name, "count": n, "failures": failures, "p50_ms": None, "p95_ms": None}
        for name, n, failures in conn.execute(
            f"SELECT tool_name, count(*), count(*) FILTER (WHERE ok = 0) FROM events"
            f" WHERE {where} AND tool_name IS NOT NULL GROUP BY tool_name",
            args,
        )
    }
    # Nearest rank, the ceil(p/100 * n)-th smallest, sorted here: SQLite's window functions took
    # twice as long for the same answer (bench/stats.py).
    durations: dict[str, list[int]] = {}
    for name, duration in conn.execute(
        f"SELECT tool_name, duration_ms FROM events WHERE {where} AND tool_name IS NOT NULL AND duration_ms IS NOT NULL",
        args,
    ):
        durations.setdefault(name, []).append(duration)
    for name, values in durations.items():
        values.sort()
        for p in PERCENTILES:
            out[name][f"p{p}_ms"] = values[-(-len(values) * p // 100) - 1]
    return sorted(out.values(), key=lambda t: (-t["count"], t["tool_name"]))


def stats(conn: apsw.Connection, flt: StatsFilter) -> dict[str, Any]:
    """All three in one read transaction: one snapshot."""
    return {
        "sessions_by_status": sessions_by_status(conn, flt),
        "events_per_minute": events_per_minute(conn, flt),
        "tools": tools(conn, flt),
    }

