"""A client's value, shortened for an error message."""

from __future__ import annotations

# int() and str() refuse numbers of over 4,300 digits; anything near that is no real value anyway.
_LONGEST_NUMBER_BITS = 1000


def shown(value: object, limit: int = 80) -> str:
    """At most `limit` characters. Never the repr of a whole object or array: for one nested a
    thousand levels deep that raises RecursionError, and for a large one it costs its full size."""
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _LONGEST_NUMBER_BITS:
        text = "a number of over 300 digits"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
