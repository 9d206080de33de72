"""`GET /v1/usage` and `aod usage`: tokens and cost grouped by day, month, model, project, session
or 5-hour block, over a window. Days and months are the daemon's local calendar (as ccusage
reports them); blocks are ccusage's: a block starts at the hour of its first message and lasts
5 hours, and a message more than 5 hours after the block's start or after the previous message
starts the next one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import apsw

from aod.storage import usage
from aod.timefmt import normalize_iso, now_iso, parse_iso

GROUPS = ("day", "month", "model", "project", "session", "block")
BLOCK = timedelta(hours=5)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")


@dataclass(frozen=True)
class Window:
    since: str | None  # stored form, inclusive
    until: str | None  # exclusive


def _local_midnight(day: date) -> str:
    # A naive datetime's astimezone() is the process's local zone, the one SQLite's 'localtime' uses.
    return normalize_iso(datetime(day.year, day.month, day.day).astimezone().isoformat())


def bound(text: str, *, end: bool) -> str:
    """A window end from an RFC 3339 instant, or a local date (YYYY-MM-DD or YYYYMMDD, as ccusage
    takes them): `since` is that day's first instant, `until` includes the whole day. ValueError
    when it is neither."""
    text = text.strip()
    if _DATE.fullmatch(text):
        digits = text.replace("-", "")
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return _local_midnight(day + timedelta(days=1) if end else day)
    return normalize_iso(text)


def _empty(key: Any) -> dict[str, Any]:
    return {"key": key, **dict.fromkeys(TOKEN_FIELDS, 0), "cost_usd": 0.0, "models": [], "messages": 0,
            "unpriced_messages": 0, "sidechain_messages": 0, "sidechain_cost_usd": 0.0}


def _hour_of(stored: str) -> datetime:
    return parse_iso(stored).replace(minute=0, second=0, microsecond=0)


def blocks(rows: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """ccusage's 5-hour billing blocks over rows in time order."""
    items: list[dict[str, Any]] = []
    start: datetime | None = None
    last: datetime | None = None
    current: dict[str, Any] = {}
    for row in rows:
        at = parse_iso(row["occurred_at"])
        if start is None or last is None or at - start > BLOCK or at - last > BLOCK:
            start = _hour_of(row["occurred_at"])
            current = _empty(normalize_iso(start.isoformat()))
            current["first_at"] = row["occurred_at"]
            items.append(current)
        last = at
        current["last_at"] = row["occurred_at"]
        for name in TOKEN_FIELDS:
            current[name] += row[name]
        current["messages"] += 1
        if row["cost_usd"] is None:
            current["unpriced_messages"] += 1
        else:
            current["cost_usd"] += row["cost_usd"]
        if row["is_sidechain"]:
            current["sidechain_messages"] += 1
            current["sidechain_cost_usd"] += row["cost_usd"] or 0.0
        if row["model"] not in current["models"]:
            current["models"].append(row["model"])
    moment = parse_iso(now)
    for item in items:
        begin = parse_iso(item["key"])
        item["end"] = normalize_iso((begin + BLOCK).isoformat())
        item["models"].sort()
        item["active"] = begin + BLOCK > moment and moment - parse_iso(item["last_at"]) < BLOCK
        minutes = (parse_iso(item["last_at"]) - parse_iso(item["first_at"])).total_seconds() / 60
        # ccusage's burn rate: cost over the time between the block's first and last message.
        item["cost_per_hour"] = item["cost_usd"] / minutes * 60 if minutes > 0 else None
    return items


def report(conn: apsw.Connection, group_by: str, window: Window, now: str | None = None) -> dict[str, Any]:
    """`{"items": [...], "total": {...}, "unpriced_models": [...]}`."""
    if group_by == "block":
        items = blocks(usage.timeline(conn, window.since, window.until), now or now_iso())
    else:
        items = usage.grouped(conn, group_by, window.since, window.until)
    total = usage.total(conn, window.since, window.until)
    return {"group_by": group_by, "since": window.since, "until": window.until, "items": items,
            "total": total, "unpriced_models": list(usage.unpriced_models(conn, window.since, window.until))}


def today_window() -> Window:
    today = datetime.now(UTC).astimezone().date()
    return Window(_local_midnight(today), _local_midnight(today + timedelta(days=1)))
