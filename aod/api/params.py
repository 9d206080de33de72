"""Query parameters every list route reads the same way, and the page it answers."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.storage.keyset import BadCursor
from aod.timefmt import normalize_iso

MAX_LIMIT = 500


def limit(request: web.Request, default: int = 50) -> int:
    text = request.query.get("limit", str(default))
    # isascii: str.isdigit() also accepts "²", which int() refuses.
    if not (text.isascii() and text.isdigit() and len(text) <= 3) or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"limit: expected an integer from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def timestamp(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return normalize_iso(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name}: expected an RFC 3339 timestamp, got {text!r}") from None


def listed(request: web.Request, name: str) -> tuple[str, ...]:
    """`name=a,b&name=c` -> ("a", "b", "c")."""
    return tuple(v for part in request.query.getall(name, []) for v in part.split(",") if v)


async def page(request: web.Request, fn: Any) -> web.Response:
    """`{"items", "next_cursor"}` from `fn(conn)` on a reader; a cursor it cannot read is a 400."""
    try:
        items, cursor = await context(request).db.read(fn)
    except BadCursor as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    for item in items:
        if "payload" in item:  # stored as JSON text already: embed it without re-parsing
            item["payload"] = orjson.Fragment(item["payload"])
    return json_response({"items": items, "next_cursor": cursor})
