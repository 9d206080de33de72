"""Timestamps as stored and served: RFC 3339 UTC text with microseconds, fixed width.

Fixed width makes the text sort like the instant it names, so SQL can compare and index it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_last_second: tuple[int, str] = (-1, "")


def _second_text(dt: datetime) -> str:
    # Not strftime: its %Y does not pad years before 1000, and the text must keep its width.
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def iso_from_ns(ns: int) -> str:
    """Raises OverflowError or ValueError (or OSError) outside the years 1-9999."""
    # Every event stamps two of these: the formatted second is reused while it lasts (formatting
    # costs more than the rest of an event's parsing).
    global _last_second
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, text = _last_second
    if seconds != cached_second:
        text = _second_text(datetime.fromtimestamp(seconds, UTC))
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
    """The stored form of `text`; ValueError for anything that is not an instant of the years 1-9999 UTC
    (an offset can push the ends of the calendar out of it)."""
    try:
        utc = parse_iso(text).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1-9999 in UTC") from None
    return f"{_second_text(utc)}.{utc.microsecond:06d}Z"


def seconds_from_iso(text: str) -> float:
    return parse_iso(text).timestamp()
