"""`GET /v1/escalations` (DESIGN §6) and `POST /v1/escalations/{id}/ack`: the human has seen it (§5)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from aod.api import params
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.config import PRIORITIES
from aod.shown import shown
from aod.storage import deliveries, escalations, sessions
from aod.timefmt import now_iso

routes = web.RouteTableDef()

CANCELLED = "cancelled: the escalation was acknowledged before this delivery went out"
# str.isdigit() also accepts "²" and other non-ASCII digits; SQLite ids fit in 63 bits.
_ID = re.compile(r"[0-9]{1,18}")
_YES, _NO = ("1", "true", "yes"), ("", "0", "false", "no")


@routes.get("/v1/escalations")
async def list_escalations(request: web.Request) -> web.Response:
    """Newest first, each with its deliveries (as `aod show` and the ack answer show them)."""
    opened = request.query.get("open", "")
    if opened not in _YES + _NO:
        raise ApiError(400, "invalid_parameter", f"open: expected 1 or 0, got {shown(opened)}")
    priorities = params.listed(request, "priority")
    unknown = sorted(set(priorities) - set(PRIORITIES))
    if unknown:
        raise ApiError(400, "invalid_parameter",
                       f"priority: unknown {', '.join(map(shown, unknown[:5]))}; one of {', '.join(PRIORITIES)}")
    session = request.query.get("session") or None
    # A mistyped id would otherwise read as "no escalations" (as /v1/sessions/{id}/events does).
    if session is not None and not await context(request).db.read(lambda c: sessions.exists(c, session)):
        raise ApiError(404, "not_found", f"no session {shown(session)}")
    flt = escalations.EscalationFilter(open=opened in _YES, session=session, priorities=priorities)
    limit, cursor = params.limit(request), request.query.get("cursor") or None
    return await params.page(request, lambda c: escalations.listing(c, flt, limit, cursor))


@routes.post("/v1/escalations/{id}/ack")
async def ack(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    if not _ID.fullmatch(text):
        raise ApiError(400, "invalid_parameter", f"escalation id: expected a positive integer, got {text!r}")
    escalation_id = int(text)
    now = now_iso()

    def acknowledge(conn: Any) -> dict[str, Any] | None:
        if escalations.ack(conn, escalation_id, now):
            # Paging someone about what they just acknowledged would only be noise.
            deliveries.cancel_pending(conn, escalation_id, CANCELLED)
        return escalations.get(conn, escalation_id)

    found = await context(request).db.write(acknowledge)
    if found is None:
        raise ApiError(404, "not_found", f"no escalation {escalation_id}")
    return json_response(found)
