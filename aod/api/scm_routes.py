"""`POST /v1/sessions/{id}/pr`: record a PR observation, the same as the SCM observer does (DESIGN §5)."""

from __future__ import annotations

import orjson
from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.scm.observation import InvalidObservation, parse_observation
from aod.scm.record import UnknownSession, record_observations
from aod.storage import prs
from aod.timefmt import now_iso

routes = web.RouteTableDef()


async def json_body(request: web.Request) -> object:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as 'Content-Type: application/json'")
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from None


@routes.post("/v1/sessions/{id}/pr")
async def post_pr(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    ctx = context(request)
    try:
        observation = parse_observation(await json_body(request))
    except InvalidObservation as exc:
        raise ApiError(400, "invalid_observation", str(exc)) from None
    stuck_after = ctx.config.lifecycle.stuck_after
    now = now_iso()

    def record(conn: object) -> dict[str, object]:
        session = record_observations(conn, session_id, [observation], now=now, stuck_after=stuck_after)
        return {"session": session, "pr": prs.get(conn, observation["url"])}

    try:
        stored = await ctx.db.write(record)
    except UnknownSession:
        raise ApiError(404, "not_found", f"no session {session_id!r}") from None
    return json_response(stored)
