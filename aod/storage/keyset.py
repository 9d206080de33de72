"""Opaque keyset cursors for list endpoints."""

from __future__ import annotations

import base64
from typing import Any

import orjson


class BadCursor(ValueError):
    pass


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


_INT64 = range(-(2**63), 2**63)


def decode(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """The values of a cursor this server issued, each of the type `shape` names (ints within
    SQLite's 64 bits); anything else, whatever it decodes to, is a BadCursor."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this server issued") from None
    if not isinstance(values, list) or len(values) != len(shape) or not all(map(_fits, values, shape)):
        raise BadCursor("cursor: not a cursor this server issued")
    return values


def _fits(value: object, kind: type) -> bool:
    if kind is int:
        return type(value) is int and value in _INT64
    return type(value) is kind


class Query:
    """A SELECT with optional filters and one page of keyset pagination.

    Callers pass only fixed column names (whitelisted in code); values are always parameters.
    """

    def __init__(self, select: str) -> None:
        self._select = select
        self._where: list[str] = []
        self._args: list[Any] = []

    def where(self, clause: str, *args: Any) -> Query:
        self._where.append(clause)
        self._args.extend(args)
        return self

    def where_if(self, value: Any, clause: str) -> Query:
        return self.where(clause, value) if value else self

    def where_in(self, column: str, values: tuple[Any, ...]) -> Query:
        return self.where(f"{column} IN ({', '.join('?' * len(values))})", *values) if values else self

    def page(
        self, conn: Any, order_by: str, limit: int, cursor_of: Any
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` rows, and the cursor of the last one when more follow."""
        from aod.storage.rows import dicts

        sql = self._select + (" WHERE " + " AND ".join(self._where) if self._where else "")
        items = dicts(conn.execute(f"{sql} ORDER BY {order_by} LIMIT ?", [*self._args, limit + 1]))
        if len(items) <= limit:
            return items, None
        items = items[:limit]
        return items, encode(cursor_of(items[-1]))
