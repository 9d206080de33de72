"""`GET /v1/admin/check[?full=1]`: `aod db check` through the daemon, which owns the file while it
runs. It answers the report `aod db check --json` prints offline (aod/storage/selfcheck.py)."""

from __future__ import annotations

from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.shown import shown
from aod.storage import selfcheck

routes = web.RouteTableDef()
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


@routes.get("/v1/admin/check")
async def check_database(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = request.query.get("full", "")
    if raw not in _FLAGS:
        raise ApiError(400, "invalid_parameter", f"full: expected 1 or 0, got {shown(raw)}")
    full = _FLAGS[raw]
    # A reader: a long integrity_check holds one pool thread and never the writer.
    checks = await ctx.db.read(lambda conn: selfcheck.read_checks(conn, full=full))
    if ctx.db.health.degraded:
        # The round trip is a write: while the disk is full or read-only it would only fail, and
        # its rolled-back insert would count as a write that "proved" the disk usable again.
        state = ctx.db.health.state
        checks.append(selfcheck.Check(selfcheck.ROUND_TRIP, False, f"not run: the database cannot be written ({state})"))
    else:
        checks.append(await ctx.db.write(selfcheck.trigger_round_trip))
    return json_response(selfcheck.report(ctx.db.path, checks, full=full))
