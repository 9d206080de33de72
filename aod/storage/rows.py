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
    "usage": ("is_sidechain",),
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


def only_row(cursor: apsw.Cursor) -> Any:
    """The one row a query always answers (an aggregate, a PRAGMA, a RETURNING of a known row).

    apsw types a row as Any; the helpers below check the one value they return.
    """
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query answered no row")
    return row


def scalar_int(cursor: apsw.Cursor) -> int:
    """The first column of the one row, an integer: count(*), PRAGMA data_version."""
    value = only_row(cursor)[0]
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, the query answered {value!r}")
    return value


def scalar_text(cursor: apsw.Cursor) -> str | None:
    """The first column of the one row, a text or NULL: min() of stamps is NULL over no rows."""
    value = only_row(cursor)[0]
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a text, the query answered {value!r}")
    return value


def grouped_counts(cursor: apsw.Cursor) -> dict[str, int]:
    """`SELECT key, count(*) ... GROUP BY key` as {key: count}."""
    return {key: n for key, n in cursor}
