"""`POST /v1/events` and `POST /v1/hooks/{agent}` (DESIGN §5)."""

from __future__ import annotations

from aiohttp import web

from aod.api.bodies import RefusedBody, read_json
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.ingest.envelope import Envelope, envelope_for_raw_hook
from aod.ingest.normalize import dead_letter_text
from aod.storage import dead_letters
from aod.timefmt import now_iso

routes = web.RouteTableDef()


async def _json_body(request: web.Request, source: str) -> object:
    """The parsed body, or an ApiError after recording what was refused."""
    try:
        return await read_json(request)
    except RefusedBody as exc:
        await _dead_letter(request, source, exc.refusal, exc.refused, reason=exc.code)
        raise


async def _dead_letter(request: web.Request, source: str, error: str, body: str | None, *, reason: str) -> None:
    """Keep a whole body the route refused (its items never reach the ingestor, which counts its own)."""
    now = now_iso()
    ctx = context(request)
    await ctx.db.write(lambda conn: dead_letters.add(conn, source, error, body, now))
    ctx.metrics.refused(reason)


@routes.post("/v1/events")
async def post_events(request: web.Request) -> web.Response:
    body = await _json_body(request, "api")
    batch = isinstance(body, dict) and "events" in body and "payload" not in body
    if batch:
        items = body["events"]
        if not isinstance(items, list):
            await _dead_letter(request, "api", "events: expected an array", dead_letter_text(body), reason="events")
            raise ApiError(400, "invalid_envelope", "events: expected an array of envelopes")
    elif isinstance(body, dict):
        items = [body]
    else:
        await _dead_letter(request, "api", "expected an envelope object", dead_letter_text(body), reason="not_an_object")
        raise ApiError(400, "invalid_envelope", "expected an envelope object or {\"events\": [...]}")
    summary = await context(request).ingestor.ingest(items, source="api")
    if not batch and summary.rejected:
        raise ApiError(400, "invalid_envelope", str(summary.rejected[0]["error"]))
    return json_response(summary.body(), 202)


@routes.post("/v1/hooks/{agent}")
async def post_hook(request: web.Request) -> web.Response:
    agent = request.match_info["agent"]
    source = f"hook:{agent}"[:64]
    payload = await _json_body(request, source)
    received_at = now_iso()

    def parse(raw: object) -> Envelope:
        return envelope_for_raw_hook(raw, agent, received_at=received_at)

    summary = await context(request).ingestor.ingest([payload], source=source, parse=parse)
    if summary.rejected:
        raise ApiError(400, "invalid_payload", str(summary.rejected[0]["error"]))
    return json_response(summary.body(), 202)


