"""`POST /v1/admin/prune`: retention on demand, so `aod db prune` never opens a served database."""

from __future__ import annotations

from aiohttp import web

from aod.api.context import context
from aod.api.errors import json_response
from aod.maintenance.janitor import prune

routes = web.RouteTableDef()


@routes.post("/v1/admin/prune")
async def prune_now(request: web.Request) -> web.Response:
    ctx = context(request)
    dry_run = request.query.get("dry_run", "") in ("1", "true", "yes")
    report = await prune(ctx.db, ctx.config.retention, dry_run=dry_run)
    return json_response(report.as_json())
