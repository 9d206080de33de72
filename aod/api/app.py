"""Assembling the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from aod.api import (
    check_routes,
    dashboard_routes,
    escalation_routes,
    export_routes,
    import_routes,
    ingest_routes,
    metrics_routes,
    openapi,
    query_routes,
    replay_routes,
    retention_routes,
    scm_routes,
    search_routes,
    session_routes,
    stats_routes,
    stream_routes,
    usage_routes,
)
from aod.api.context import CONTEXT, AppContext
from aod.api.errors import json_errors
from aod.api.security import guard


def build_app(ctx: AppContext) -> web.Application:
    # client_max_size makes aiohttp refuse an oversized body before reading all of it.
    app = web.Application(
        middlewares=[json_errors, guard(ctx.token)],
        client_max_size=ctx.config.ingest.max_body_bytes,
    )
    app[CONTEXT] = ctx
    app.add_routes(ingest_routes.routes)
    app.add_routes(query_routes.routes)
    app.add_routes(session_routes.routes)
    app.add_routes(search_routes.routes)
    app.add_routes(replay_routes.routes)
    app.add_routes(export_routes.routes)
    app.add_routes(stream_routes.routes)
    app.add_routes(retention_routes.routes)
    app.add_routes(check_routes.routes)
    app.add_routes(scm_routes.routes)
    app.add_routes(escalation_routes.routes)
    app.add_routes(stats_routes.routes)
    app.add_routes(usage_routes.routes)
    app.add_routes(import_routes.routes)
    app.add_routes(openapi.routes)
    app.add_routes(metrics_routes.routes)
    app.add_routes(dashboard_routes.routes)
    return app
