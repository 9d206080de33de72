"""Turning apsw result rows into dicts keyed by column name."""

from __future__ import annotations

from typing import Any

import apsw


def dicts(cursor: apsw.Cursor) -> list[dict[str, Any]]:
    # apsw describes columns only while the statement has rows pending: ask before fetching.
    try:
        names = [d[0] for d in cursor.get_description()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def one(cursor: apsw.Cursor) -> dict[str, Any] | None:
    found = dicts(cursor)
    return found[0] if found else None
