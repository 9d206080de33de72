"""`GET /v1/stats`: what the dashboard charts (DESIGN §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from aod.api import params
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.storage import projects, sessions, stats
from aod.timefmt import normalize_iso, now_iso, parse_iso

routes = web.RouteTableDef()
DEFAULT_WINDOW = timedelta(hours=1)
# events_per_minute has an entry for every minute: a week is 10,080 of them, and a longer
# window is a question for a coarser chart than this one.
MAX_WINDOW = timedelta(days=7)


def _hour_before(stored: str) -> str:
    try:
        return normalize_iso((parse_iso(stored) - DEFAULT_WINDOW).isoformat())
    except OverflowError:  # an `until` in the first hour of year 1
        return normalize_iso(datetime.min.replace(tzinfo=UTC).isoformat())


def window(request: web.Request) -> tuple[str, str]:
    """`since`..`until`, until exclusive: `until` defaults to now, `since` to an hour before it."""
    since, until = params.timestamp(request, "since"), params.timestamp(request, "until") or now_iso()
    if since is None:
        since = _hour_before(until)
    if since >= until:
        raise ApiError(400, "invalid_parameter", f"since: must be before until ({since} >= {until})")
    if parse_iso(until) - parse_iso(since) > MAX_WINDOW:
        raise ApiError(400, "invalid_parameter", f"since..until: at most 7 days, got {since}..{until}")
    return since, until


def _answer(conn: Any, flt: stats.StatsFilter) -> dict[str, Any] | str:
    """The stats, or what the filter names that does not exist."""
    if flt.session is not None and not sessions.exists(conn, flt.session):
        return f"no session {flt.session!r}"
    if flt.project is not None and projects.by_id(conn, flt.project) is None:
        return f"no project {flt.project!r}"
    return stats.stats(conn, flt)


@routes.get("/v1/stats")
async def get_stats(request: web.Request) -> web.Response:
    since, until = window(request)
    flt = stats.StatsFilter(
        since=since, until=until,
        project=request.query.get("project") or None, session=request.query.get("session") or None,
    )
    found = await context(request).db.read(lambda c: _answer(c, flt))
    if isinstance(found, str):
        raise ApiError(404, "not_found", found)
    return json_response(found)
