"""Timestamps as stored and served: RFC 3339 UTC text with microseconds, fixed width.

Fixed width makes the text sort like the instant it names, so SQL can compare and index it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


_SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S"
_last_second: tuple[int, str] = (-1, "")


def iso_from_ns(ns: int) -> str:
    # Every event stamps two of these: the formatted second is reused while it lasts (strftime
    # costs more than the rest of an event's parsing).
    global _last_second
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, text = _last_second
    if seconds != cached_second:
        text = datetime.fromtimestamp(seconds, UTC).strftime(_SECOND_FORMAT)
        _last_second = (seconds, text)
    return f"{text}.{rest // 1000:06d}Z"


def iso_from_seconds(seconds: float) -> str:
    return iso_from_ns(round(seconds * 1_000_000_000))


def now_iso() -> str:
    return iso_from_ns(time.time_ns())


def parse_iso(text: str) -> datetime:
    """Any RFC 3339 / ISO 8601 timestamp; naive means UTC."""
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize_iso(text: str) -> str:
    return parse_iso(text).astimezone(UTC).strftime(_FORMAT)


def seconds_from_iso(text: str) -> float:
    return parse_iso(text).timestamp()
