"""Validating one ingest item (DESIGN §5 envelope) into an `Envelope`; pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aod.shown import shown
from aod.timefmt import iso_from_ns, iso_from_seconds, normalize_iso, seconds_from_iso
from aod.uids import uid7

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# What tmux puts in $TMUX_PANE. The pane is later passed to `tmux -t`: nothing else may get there
# (a NUL cannot be passed at all, and "-x" would read as an option).
_PANE = re.compile(r"%[0-9]{1,9}")
# Epoch values above this are nanoseconds, below are seconds (1e11 s is the year 5138).
_NS_THRESHOLD = 100_000_000_000
# The window of believable client clocks. A stamp outside it is replaced by the arrival time:
# kept, the event would sort before every real one (year 0999) or, worse, pin the session's
# last_event_at so that no real event ever counts as newer (year 2554).
EARLIEST_OCCURRED_AT = "2000-01-01T00:00:00.000000Z"
MAX_AHEAD_SECONDS = 86_400


class InvalidItem(ValueError):
    """An item that cannot become an event; the message says which field and why."""


# This and the other objects made per event (columns, prepared items, results, activity states)
# are slotted but not frozen: a frozen dataclass sets each field through object.__setattr__,
# ~1 µs per object, which added up to several µs per event. Nothing mutates them.
@dataclass(slots=True)
class Envelope:
    uid: str
    agent: str
    occurred_at: str
    session: str | None
    tmux_pane: str | None
    pid: int | None
    payload: dict[str, Any]


def parse_envelope(item: object, *, received_at: str) -> Envelope:
    if not isinstance(item, dict):
        raise InvalidItem(f"an event must be a JSON object, got {_json_type(item)}")
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise InvalidItem(f"payload: expected the hook's JSON object, got {_json_type(payload)}")
    runtime = item.get("runtime")
    if runtime is not None and not isinstance(runtime, dict):
        raise InvalidItem(f"runtime: expected an object, got {_json_type(runtime)}")
    runtime = runtime or {}
    return Envelope(
        uid=_uid(item.get("uid")),
        agent=_name(item.get("agent", "claude-code"), "agent"),
        occurred_at=_occurred_at(item.get("occurred_at"), received_at),
        session=None if item.get("session") in (None, "") else _name(item.get("session"), "session"),
        tmux_pane=_pane(runtime.get("tmux_pane")),
        pid=_optional_pid(runtime.get("pid")),
        payload=payload,
    )


def envelope_for_raw_hook(payload: object, agent: str, *, received_at: str) -> Envelope:
    """`POST /v1/hooks/{agent}`: the bare payload of an `http` hook, stamped on arrival."""
    return parse_envelope({"agent": agent, "occurred_at": received_at, "payload": payload}, received_at=received_at)


def _uid(value: object) -> str:
    if value is None or value == "":
        return uid7()
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidItem(f"uid: expected a string of at most 128 characters, got {_json_type(value)}")
    return value


def _name(value: object, field: str) -> str:
    # Nearly every event repeats an agent and session name already checked: a set lookup, no regex.
    if isinstance(value, str) and value in _valid_names:
        return value
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidItem(f"{field}: expected a name of letters, digits, '.', '_', ':' or '-', got {shown(value)}")
    if len(_valid_names) >= _VALID_NAMES_KEPT:
        _valid_names.clear()
    _valid_names.add(value)
    return value


_valid_names: set[str] = set()
_VALID_NAMES_KEPT = 1024


def _pane(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _PANE.fullmatch(value):
        raise InvalidItem(f"runtime.tmux_pane: expected a tmux pane id like %3, got {shown(value, 40)}")
    return value


def _optional_pid(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise InvalidItem(f"runtime.pid: expected a positive integer, got {shown(value, 40)}")
    return value


def _occurred_at(value: object, received_at: str) -> str:
    if value is None or value == "":
        return received_at
    stamped = _client_time(value)
    if stamped < EARLIEST_OCCURRED_AT or stamped > _latest_believable(received_at):
        return received_at
    return stamped


_latest: tuple[str, str] = ("", "")


def _latest_believable(received_at: str) -> str:
    global _latest
    if _latest[0] != received_at:  # one request's items share their received_at
        _latest = (received_at, iso_from_seconds(seconds_from_iso(received_at) + MAX_AHEAD_SECONDS))
    return _latest[1]


def _client_time(value: object) -> str:
    if isinstance(value, bool):
        raise InvalidItem("occurred_at: expected RFC 3339 text or epoch nanoseconds, got a boolean")
    try:
        if isinstance(value, int):
            return iso_from_ns(value) if value > _NS_THRESHOLD else iso_from_seconds(value)
        if isinstance(value, float):
            return iso_from_seconds(value)
        if isinstance(value, str):
            return normalize_iso(value)
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidItem(f"occurred_at: expected RFC 3339 text or epoch nanoseconds, got {shown(value, 60)}")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
