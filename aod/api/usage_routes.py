"""`GET /v1/usage`: tokens and cost from the transcripts, grouped (DESIGN §6 "Usage")."""

from __future__ import annotations

from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.usage import reports

routes = web.RouteTableDef()


def _bound(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return reports.bound(text, end=name == "until")
    except ValueError:
        raise ApiError(400, "invalid_parameter",
                       f"{name}: expected a date (YYYY-MM-DD) or an RFC 3339 timestamp, got {text!r}") from None


def window(request: web.Request) -> reports.Window:
    since, until = _bound(request, "since"), _bound(request, "until")
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "invalid_parameter", f"since: must be before until ({since} >= {until})")
    return reports.Window(since, until)


@routes.get("/v1/usage")
async def get_usage(request: web.Request) -> web.Response:
    group_by = request.query.get("group_by", "day")
    if group_by not in reports.GROUPS:
        raise ApiError(400, "invalid_parameter", f"group_by: expected one of {', '.join(reports.GROUPS)}, got {group_by!r}")
    flt = window(request)
    return json_response(await context(request).db.read(lambda c: reports.report(c, group_by, flt)))
