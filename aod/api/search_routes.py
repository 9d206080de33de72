"""`GET /v1/search`: full-text search over the stored events (DESIGN §6 "Look back")."""

from __future__ import annotations

from aiohttp import web

from aod.api import params
from aod.api.errors import ApiError
from aod.storage import search

routes = web.RouteTableDef()
MAX_QUERY_CHARS = 1000


@routes.get("/v1/search")
async def search_events(request: web.Request) -> web.Response:
    text = request.query.get("q", "").strip()
    if not text:
        raise ApiError(400, "invalid_parameter", "q: expected an FTS5 query (words, \"a phrase\", prefix*, AND/OR/NOT)")
    if len(text) > MAX_QUERY_CHARS:
        raise ApiError(400, "invalid_parameter", f"q: at most {MAX_QUERY_CHARS} characters, got {len(text)}")
    flt = search.SearchFilter(
        query=text,
        session=request.query.get("session") or None,
        project=request.query.get("project") or None,
        kinds=params.listed(request, "kind"),
        since=params.timestamp(request, "since"),
        until=params.timestamp(request, "until"),
    )
    limit, cursor = params.limit(request), request.query.get("cursor") or None
    try:
        return await params.page(request, lambda c: search.search(c, flt, limit, cursor))
    except search.BadQuery as exc:
        raise ApiError(400, "invalid_query", f"q: {exc}") from None
