"""Event uids: UUIDv7 (RFC 9562) as 32 hex digits. Stdlib only: the hook client imports it.

Time-ordered uids land on the right edge of the events uid index instead of on a random page
of it, so a commit of many events rewrites a few index pages rather than one per event.
"""

from __future__ import annotations

import os
import time


def uid7(ns: int | None = None) -> str:
    """A new uid for an event that happened at `ns` (epoch nanoseconds; default now)."""
    ms = (time.time_ns() if ns is None else ns) // 1_000_000
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = (b[6] & 0x0F) | 0x70  # version 7
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 9562 variant
    return b.hex()
