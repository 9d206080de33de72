"""Turning apsw result rows into dicts keyed by column name, with flags as booleans."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

import apsw

# The columns that hold a flag, per table. SQLite has no boolean type and stores them as 0/1;
# every row that leaves the storage layer (API objects, `--json` output) and the stream's `data`
# (aod/cdc/frames.py) shows them as true/false, and null stays null ("unknown", e.g. is_alive
# before a probe answered). DESIGN §6. tests/test_booleans.py fails for an INTEGER column of
# the schema that is in neither this map nor its list of numbers.
BOOLEANS: dict[str, tuple[str, ...]] = {
    "sessions": ("is_alive",),
    "events": ("ok", "trimmed"),
    "prs": ("draft",),
    "pr_comments": ("resolved",),
}

# A query's columns do not say which table they come from (a join, `c.*`), so rows are converted
# by column name; the schema test makes sure no column of these names anywhere is not a flag.
FLAG_NAMES = frozenset(name for names in BOOLEANS.values() for name in names)


def as_booleans(item: MutableMapping[str, Any], names: Iterable[str]) -> None:
    """The flags among `names` that `item` has become True/False in place; None stays None."""
    for name in names:
        value = item.get(name)
        if value is not None:
            item[name] = bool(value)


def dicts(cursor: apsw.Cursor) -> list[dict[str, Any]]:
    # apsw describes columns only while the statement has rows pending: ask before fetching.
    try:
        names = [d[0] for d in cursor.get_description()]
    except apsw.ExecutionCompleteError:
        return []
    flags = [name for name in names if name in FLAG_NAMES]
    if not flags:
        return [dict(zip(names, row, strict=True)) for row in cursor]
    # Listings return up to 500 rows: the flags were found once above, each row only looks them up.
    items = []
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        as_booleans(item, flags)
        items.append(item)
    return items


def one(cursor: apsw.Cursor) -> dict[str, Any] | None:
    found = dicts(cursor)
    return found[0] if found else None
