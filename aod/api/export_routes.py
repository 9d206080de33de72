"""`GET /v1/sessions/{id}/export?format=jsonl|md`: one session written out whole, streamed page by
page (DESIGN §6 "Look back"): JSONL of the full events for tools (each line also a valid item of
`POST /v1/events`, so an export re-ingests as it is), Markdown for people (aod/lookback/markdown.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError
from aod.lookback import markdown
from aod.storage import escalations, events, prs, sessions

routes = web.RouteTableDef()
PAGE = 500
FORMATS = {"jsonl": "application/x-ndjson", "md": "text/markdown"}


def _head(conn: Any, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None:
    session = sessions.get(conn, session_id)
    if session is None:
        return None
    return session, prs.for_session(conn, session_id), list(reversed(escalations.for_session(conn, session_id)))


@routes.get("/v1/sessions/{id}/export")
async def export_session(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    session_id = request.match_info["id"]
    fmt = request.query.get("format", "jsonl")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_parameter", f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    head = await ctx.db.read(lambda c: _head(c, session_id))
    if head is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")

    response = web.StreamResponse(headers={
        "Cache-Control": "no-cache",
        "Content-Disposition": f'attachment; filename="{session_id}.{fmt}"',
    })
    response.content_type = FORMATS[fmt]
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    if fmt == "md":
        await response.write(markdown.header(*head).encode())
    after = 0
    while True:
        rows = await ctx.db.read(partial(events.full_rows, session_id=session_id, after_id=after, limit=PAGE))
        if not rows:
            break
        after = rows[-1]["id"]
        if fmt == "jsonl":
            for row in rows:
                row["payload"] = orjson.Fragment(row["payload"])  # stored as JSON text: embedded, not re-parsed
                row["session"] = row["session_id"]  # the envelope's name for it: re-ingested, it lands there
            chunk = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        else:
            chunk = "".join(markdown.event(row) for row in rows).encode()
        await response.write(chunk)
        if len(rows) < PAGE:
            break
    await response.write_eof()
    return response
