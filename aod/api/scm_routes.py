"""`POST /v1/sessions/{id}/pr`: record a PR observation, the same as the SCM observer does (DESIGN §5)."""

from __future__ import annotations

import apsw
from aiohttp import web

from aod.api.bodies import read_json
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.scm.observation import InvalidObservation, parse_observation
from aod.scm.record import UnknownSession, record_observations
from aod.storage import prs
from aod.timefmt import now_iso

routes = web.RouteTableDef()


@routes.post("/v1/sessions/{id}/pr")
async def post_pr(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    ctx = context(request)
    try:
        observation = parse_observation(await read_json(request))
    except InvalidObservation as exc:
        raise ApiError(400, "invalid_observation", str(exc)) from None
    now = now_iso()

    def record(conn: apsw.Connection) -> dict[str, object]:
        session = record_observations(conn, ctx.control.facts, session_id, [observation], now=now)
        return {"session": session, "pr": prs.get(conn, observation["url"])}

    try:
        stored = await ctx.db.write(record)
    except UnknownSession:
        raise ApiError(404, "not_found", f"no session {session_id!r}") from None
    return json_response(stored)
