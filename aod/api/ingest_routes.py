"""`POST /v1/events` and `POST /v1/hooks/{agent}` (DESIGN §5).

The daemon serves these two on the lean protocol (aod/api/lean.py); the aiohttp routes here stay
for apps built without it (tests, the bench's comparison). Both call the functions below, so
what is accepted, refused and dead-lettered is decided in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from aod.api.bodies import RefusedBody, read_json
from aod.api.context import AppContext, context
from aod.api.errors import ApiError, json_response
from aod.ingest.envelope import Envelope, envelope_for_raw_hook
from aod.ingest.normalize import dead_letter_text
from aod.storage import dead_letters
from aod.timefmt import now_iso

routes = web.RouteTableDef()
EVENTS_SOURCE = "api"


def hook_source(agent: str) -> str:
    return f"hook:{agent}"[:64]


async def json_body(ctx: AppContext, source: str, read: Callable[[], Awaitable[object]]) -> object:
    """The parsed body, or an ApiError after recording what was refused."""
    try:
        return await read()
    except RefusedBody as exc:
        await _dead_letter(ctx, source, exc.refusal, exc.refused, reason=exc.code)
        raise


async def _dead_letter(ctx: AppContext, source: str, error: str, body: str | None, *, reason: str) -> None:
    """Keep a whole body the route refused (its items never reach the ingestor, which counts its own)."""
    now = now_iso()
    await ctx.db.write(lambda conn: dead_letters.add(conn, source, error, body, now))
    ctx.metrics.refused(reason)


async def accept_events(ctx: AppContext, body: object) -> dict[str, object]:
    """Ingest a POST /v1/events body; answers the 202 body once the items are committed."""
    batch = isinstance(body, dict) and "events" in body and "payload" not in body
    if batch and isinstance(body, dict):  # batch implies a dict: said again for the type checker
        items = body["events"]
        if not isinstance(items, list):
            await _dead_letter(ctx, EVENTS_SOURCE, "events: expected an array", dead_letter_text(body), reason="events")
            raise ApiError(400, "invalid_envelope", "events: expected an array of envelopes")
    elif isinstance(body, dict):
        items = [body]
    else:
        await _dead_letter(ctx, EVENTS_SOURCE, "expected an envelope object", dead_letter_text(body),
                           reason="not_an_object")
        raise ApiError(400, "invalid_envelope", "expected an envelope object or {\"events\": [...]}")
    summary = await ctx.ingestor.ingest(items, source=EVENTS_SOURCE)
    if not batch and summary.rejected:
        raise ApiError(400, "invalid_envelope", str(summary.rejected[0]["error"]))
    return summary.body()


async def accept_hook(ctx: AppContext, agent: str, payload: object) -> dict[str, object]:
    """Ingest a POST /v1/hooks/{agent} body (an agent's raw hook payload)."""
    received_at = now_iso()

    def parse(raw: object) -> Envelope:
        return envelope_for_raw_hook(raw, agent, received_at=received_at)

    summary = await ctx.ingestor.ingest([payload], source=hook_source(agent), parse=parse)
    if summary.rejected:
        raise ApiError(400, "invalid_payload", str(summary.rejected[0]["error"]))
    return summary.body()


@routes.post("/v1/events")
async def post_events(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await json_body(ctx, EVENTS_SOURCE, lambda: read_json(request))
    return json_response(await accept_events(ctx, body), 202)


@routes.post("/v1/hooks/{agent}")
async def post_hook(request: web.Request) -> web.Response:
    ctx = context(request)
    agent = request.match_info["agent"]
    payload = await json_body(ctx, hook_source(agent), lambda: read_json(request))
    return json_response(await accept_hook(ctx, agent, payload), 202)
