"""`POST /v1/escalations/{id}/ack`: the human has seen it (DESIGN §5)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.storage import deliveries, escalations
from aod.timefmt import now_iso

routes = web.RouteTableDef()

CANCELLED = "cancelled: the escalation was acknowledged before this delivery went out"
# str.isdigit() also accepts "²" and other non-ASCII digits; SQLite ids fit in 63 bits.
_ID = re.compile(r"[0-9]{1,18}")


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
