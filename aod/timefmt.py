"""Timestamps as stored and served: RFC 3339 UTC text with microseconds, fixed width.

Fixed width makes the text sort like the instant it names, so SQL can compare and index it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso_from_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000).strftime(_FORMAT)


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
