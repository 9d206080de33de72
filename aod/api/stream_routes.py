"""`GET /v1/stream`: the live change stream as server-sent events (DESIGN §3)."""

from __future__ import annotations

import logging

from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError
from aod.cdc.cursor import BadStreamRequest, cursor_from, parse_filter
from aod.cdc.feed import Feed

routes = web.RouteTableDef()
log = logging.getLogger("aod.stream")


@routes.get("/v1/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    broadcaster = ctx.broadcaster
    if broadcaster.closed:
        raise ApiError(503, "not_ready", "the change stream is not running (the daemon is starting or stopping)")
    try:
        cursor = cursor_from(request.headers.get("Last-Event-ID"), request.query.get("after"))
        flt = parse_filter(request.query.get("session"), request.query.get("entities"))
    except BadStreamRequest as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None

    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    response.force_close()  # a stream ends only with its connection: no keep-alive reuse
    await response.prepare(request)
    transport = request.transport

    def cut() -> None:
        # abort, not close: close would first wait to flush to a client that is not reading.
        if transport is not None:
            transport.abort()

    feed = Feed(ctx.db, broadcaster, flt, response.write, cut)
    try:
        reason = await feed.run(cursor)
    except ConnectionError:
        reason = "disconnected"
    except Exception:
        # The status line is long gone; all that is left is to end the stream. The client
        # reconnects with its last id and loses nothing.
        log.exception("stream failed", extra={"covered": feed.covered})
        reason = "failed"
    log.debug("stream ended", extra={"reason": reason, "covered": feed.covered})
    return response
