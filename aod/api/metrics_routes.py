"""`GET /metrics`: Prometheus text (aod/metrics.py), behind the same guard as every route."""

from __future__ import annotations

import asyncio

from aiohttp import web

from aod import metrics
from aod.api.context import context

routes = web.RouteTableDef()


@routes.get("/metrics")
async def scrape(request: web.Request) -> web.Response:
    ctx = context(request)
    facts = await ctx.db.read(metrics.read_facts)
    facts.spool_backlog, facts.spool_rejected = await asyncio.to_thread(metrics.spool_files, ctx.spool_dir)
    facts.stream_clients, facts.stream_cuts = ctx.broadcaster.subscribers, ctx.broadcaster.cut_count
    facts.writer_queue = ctx.db.writer.queue_depth
    facts.storage_state = ctx.db.health.state
    facts.config_errors = len(ctx.config_errors)
    facts.forward = await ctx.forward_status()
    return web.Response(body=ctx.metrics.render(facts), headers={"Content-Type": metrics.CONTENT_TYPE})
