"""The team view's queries on the team store (`aod team sessions|stats`), with psycopg 3.

Every query runs as the role of the dsn, so row-level security decides whose rows it sees: a
member their own, a member of aod_team everyone's. Lists page by keyset (an opaque cursor of the
last row's sort key), never by offset.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from aod.storage import keyset

# What needs a human, worst first in the board's order; the list itself is newest first.
NEEDS_HUMAN = ("needs_input", "ci_failed", "changes_requested", "stuck")


class BadCursor(ValueError):
    pass


def _decode(cursor: str) -> list[Any]:
    try:
        return keyset.decode(cursor, (str, str, str, str))
    except keyset.BadCursor:
        raise BadCursor(f"not a cursor of aod team sessions: {cursor[:40]}") from None


def connect(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, connect_timeout=5, row_factory=dict_row, autocommit=True)


def sessions_needing_human(conn: psycopg.Connection[dict[str, Any]], limit: int,
                           cursor: str | None = None) -> dict[str, Any]:
    """Sessions of every visible machine whose status needs a human, newest update first."""
    after = ""
    params: list[Any] = [list(NEEDS_HUMAN)]
    if cursor:
        updated_at, tenant, machine, sid = _decode(cursor)
        after = " AND (s.updated_at, s.tenant_id, s.machine_id, s.id) < (%s::timestamptz, %s, %s, %s)"
        params += [updated_at, tenant, machine, sid]
    rows = conn.execute(
        "SELECT s.tenant_id, s.machine_id, s.id, s.status, s.agent, s.title, s.branch, s.project_id,"
        " p.name AS project, s.updated_at, s.last_event_at"
        " FROM aod.sessions s LEFT JOIN aod.projects p"
        "  ON p.tenant_id = s.tenant_id AND p.machine_id = s.machine_id AND p.id = s.project_id"
        " WHERE s.status = ANY(%s)" + after +
        " ORDER BY s.updated_at DESC, s.tenant_id DESC, s.machine_id DESC, s.id DESC LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    more = len(rows) > limit
    items = [_jsonable(r) for r in rows[:limit]]
    last = rows[limit - 1] if more else None
    next_cursor = None if last is None else keyset.encode(
        [last["updated_at"].isoformat(), last["tenant_id"], last["machine_id"], last["id"]])
    return {"items": items, "next_cursor": next_cursor}


def ci_failures_by_repository(conn: psycopg.Connection[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """Failed check runs of the last `days` days by repository (the PR URL without /pull/N)."""
    rows = conn.execute(
        "SELECT regexp_replace(pr_url, '/pull/[0-9]+$', '') AS repository, count(*) AS failed_checks,"
        " count(DISTINCT pr_url) AS prs, count(DISTINCT tenant_id) AS people, max(updated_at) AS last_failed_at"
        " FROM aod.pr_checks WHERE status = 'failed' AND updated_at >= now() - make_interval(days => %s)"
        " GROUP BY 1 ORDER BY failed_checks DESC, repository",
        [days],
    ).fetchall()
    return [_jsonable(r) for r in rows]


def cost_per_person_per_day(conn: psycopg.Connection[dict[str, Any]], days: int) -> list[dict[str, Any]] | None:
    """USD and tokens per tenant per UTC day; None when the team store has no usage table."""
    if conn.execute("SELECT to_regclass('aod.usage') AS t").fetchone() == {"t": None}:
        return None
    rows = conn.execute(
        "SELECT tenant_id AS person, (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS messages,"
        " sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens)::bigint AS tokens,"
        " round(sum(cost_usd)::numeric, 4)::float AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced"
        " FROM aod.usage WHERE occurred_at >= now() - make_interval(days => %s)"
        " GROUP BY 1, 2 ORDER BY 2 DESC, 1",
        [days],
    ).fetchall()
    return [_jsonable(r) for r in rows]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps and dates as ISO text, numerics (a sum) as numbers: what JSON can carry."""
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime | date):
            v = v.isoformat()
        elif isinstance(v, Decimal):
            v = int(v) if v == v.to_integral_value() else float(v)
        out[k] = v
    return out
