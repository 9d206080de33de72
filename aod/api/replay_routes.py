"""`GET /v1/sessions/{id}/replay`: a stored session's events again, as server-sent events spaced by
their original gaps / speed (DESIGN §6 "Look back"); the pacing rules are aod/lookback/pacing.py."""

from __future__ import annotations

import asyncio
import logging
import math
from functools import partial

import orjson
from aiohttp import web

from aod.api import params
from aod.api.context import AppContext, context
from aod.api.errors import ApiError
from aod.cdc.frames import RETRY, replay_frame
from aod.lookback.pacing import DEFAULT_MAX_GAP, MAX_SPEED, MIN_SPEED, pause
from aod.storage import events, sessions

routes = web.RouteTableDef()
log = logging.getLogger("aod.replay")
PAGE = 200
MAX_GAP_LIMIT = 3600.0
# A long pause is slept in slices, so a stopping daemon ends the replay within one: aiohttp's
# shutdown would otherwise wait its timeout for the handler.
SLICE = 0.25
_NOTHING_LEFT = 2**63 - 1


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails both comparisons
        raise ApiError(400, "invalid_parameter", f"{name}: expected a number from {low:g} to {high:g}, got {text!r}")
    return value


def _event_id(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not 0 < int(text) < 2**63:
        raise ApiError(400, "invalid_parameter", f"{name}: expected an event id, got {text!r}")
    return int(text)


async def _start(ctx: AppContext, request: web.Request, session_id: str) -> tuple[int, str | None]:
    """The id to replay after, and the time of the event before the first (None: send it at once)."""
    last = request.headers.get("Last-Event-ID", "").strip()
    if last:
        # A reconnect: continue after the last event the client has, paced from that event.
        last_id = _event_id(last, "Last-Event-ID")
        rows = await ctx.db.read(lambda c: events.stream_rows(c, session_id, last_id - 1, 1))
        return last_id, (rows[0][4] if rows and rows[0][0] == last_id else None)
    start = request.query.get("from", "").strip()
    if not start:
        return 0, None
    if start.isascii() and start.isdigit():
        return _event_id(start, "from") - 1, None
    at = params.timestamp(request, "from")
    assert at is not None
    first = await ctx.db.read(lambda c: events.first_id_from(c, session_id, at))
    return (first - 1 if first is not None else _NOTHING_LEFT), None


@routes.get("/v1/sessions/{id}/replay")
async def replay_session(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    session_id = request.match_info["id"]
    speed = _number(request, "speed", 1.0, MIN_SPEED, MAX_SPEED)
    max_gap = _number(request, "max_gap", DEFAULT_MAX_GAP, 0.0, MAX_GAP_LIMIT)
    if not await ctx.db.read(lambda c: sessions.exists(c, session_id)):
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    after_id, previous_at = await _start(ctx, request, session_id)

    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    response.force_close()
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    due = loop.time()  # when the next event is due: the pauses add up on one clock, so no drift
    sent, last_sent = 0, None
    try:
        await response.write(RETRY)
        while True:
            rows = await ctx.db.read(partial(events.stream_rows, session_id=session_id, after_id=after_id, limit=PAGE))
            for row in rows:
                step = pause(previous_at, row[4], speed, max_gap)
                due += step.wait
                while (left := due - loop.time()) > 0:
                    if ctx.broadcaster.closed:
                        return response
                    await asyncio.sleep(min(left, SLICE))
                due = max(due, loop.time())  # a slow client does not earn a burst afterwards
                await response.write(replay_frame(row, step.marks()))
                previous_at, after_id, last_sent, sent = row[4], row[0], row[0], sent + 1
            if len(rows) < PAGE:
                break
        # No id: a browser that reconnects after this resumes from the last event and gets `end` again.
        await response.write(b"event: end\ndata: %s\n\n" % orjson.dumps({"events": sent, "last_id": last_sent}))
    except ConnectionError:
        log.debug("replay client went away", extra={"session_id": session_id, "sent": sent})
    return response
