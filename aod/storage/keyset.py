"""Opaque keyset cursors for list endpoints."""

from __future__ import annotations

import base64
from typing import Any

import orjson


class BadCursor(ValueError):
    pass


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode(cursor: str, arity: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this server issued") from None
    if not isinstance(values, list) or len(values) != arity:
        raise BadCursor("cursor: not a cursor this server issued")
    return values
