"""Reading a request's JSON body, the same way for every route that takes one."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from aod.api.context import context
from aod.api.errors import ApiError


class RefusedBody(ApiError):
    """A body the API will not parse. `refusal` (why) and `refused` (the body as text, if read)
    are what a dead letter records; both names avoid HTTPException's own `reason` and `body`."""

    def __init__(self, status: int, code: str, message: str, *, refusal: str, refused: str | None) -> None:
        super().__init__(status, code, message)
        self.refusal = refusal
        self.refused = refused


async def read_json(request: web.Request, *, empty: object = None) -> object:
    """The parsed body; `empty` stands for a missing body when given, else that is invalid JSON."""
    check_content_type(request.content_type)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(context(request).config.ingest.max_body_bytes, request.content_length) from None
    return parse_json(raw, empty)


# The pieces of read_json on plain values: the lean ingest protocol (aod/api/lean.py) reads its
# bodies itself and refuses them with the same errors and dead-letter texts.
def check_content_type(mimetype: str) -> None:
    if mimetype != "application/json":
        raise RefusedBody(415, "unsupported_media_type", "send the body as 'Content-Type: application/json'",
                          refusal=f"unsupported content type {mimetype!r}", refused=None)


def too_large(limit: int, declared: int | None) -> RefusedBody:
    return RefusedBody(413, "body_too_large", f"the body is larger than ingest.max_body_bytes ({limit} bytes)",
                       refusal=f"body over {limit} bytes ({declared} declared)", refused=None)


def parse_json(raw: bytes, empty: object = None) -> object:
    if not raw and empty is not None:
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RefusedBody(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}",
                          refusal=f"invalid JSON: {exc}", refused=raw.decode(errors="replace")) from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body; no body at all is an empty object."""
    body = await read_json(request, empty={})
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object")
    return body
