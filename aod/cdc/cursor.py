"""Stream cursors and filters, and where a stream starts: pure rules, no I/O (DESIGN §3).

A cursor `<db_epoch>:<seq>` names the last change a client has. A bare `<seq>` (accepted in
`?after=`) skips the epoch check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENTITIES = ("session", "pr", "check", "event", "escalation", "usage")
_EPOCH = re.compile(r"[0-9A-Za-z_-]{1,64}")
_MAX_SEQ = (1 << 63) - 1


class BadStreamRequest(ValueError):
    """A cursor or filter the client sent cannot be understood (answered with 400)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    epoch: str | None
    seq: int


def format_cursor(epoch: str, seq: int) -> str:
    return f"{epoch}:{seq}"


def parse_cursor(text: str, source: str) -> Cursor:
    """`<epoch>:<seq>` or a bare `<seq>`; `source` names where it came from in the error."""
    epoch, sep, seq_text = text.strip().rpartition(":")
    if sep and not _EPOCH.fullmatch(epoch):
        raise BadStreamRequest(f"{source}: expected '<epoch>:<seq>' or a seq, got {text!r}")
    # The length first: int() refuses texts of over 4,300 digits with a ValueError of its own.
    if not (seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 19) or int(seq_text) > _MAX_SEQ:
        raise BadStreamRequest(f"{source}: expected '<epoch>:<seq>' or a seq, got {text!r}")
    return Cursor(epoch if sep else None, int(seq_text))


def cursor_from(last_event_id: str | None, after: str | None) -> Cursor | None:
    """The header wins: a browser reconnecting keeps its first URL (with `?after=`) and adds it."""
    if last_event_id is not None and last_event_id.strip():
        return parse_cursor(last_event_id, "Last-Event-ID")
    if after is not None:
        return parse_cursor(after, "after")
    return None


@dataclass(frozen=True, slots=True)
class StreamFilter:
    session: str | None = None
    entities: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.session is None and self.entities is None

    def matches(self, entity: str, session_id: str | None) -> bool:
        if self.entities is not None and entity not in self.entities:
            return False
        return self.session is None or session_id == self.session


def parse_filter(session: str | None, entities: str | None) -> StreamFilter:
    if session is not None and not session.strip():
        raise BadStreamRequest("session: expected a session id, got an empty value")
    chosen = None
    if entities is not None:
        names = [n.strip() for n in entities.split(",") if n.strip()]
        unknown = sorted(set(names) - set(ENTITIES))
        if not names or unknown:
            raise BadStreamRequest(
                f"entities: expected a comma-separated list of {', '.join(ENTITIES)}, got {entities!r}"
            )
        chosen = frozenset(names)
    return StreamFilter(session, chosen)


@dataclass(frozen=True, slots=True)
class Start:
    """Where a stream begins: replay everything after `after`, or reset (send `head`, go live)."""

    after: int
    reset: bool


def start_of(cursor: Cursor | None, *, epoch: str, floor: int, head: int) -> Start:
    """`retention_floor` is the highest seq compacted away: a cursor below it has lost rows."""
    if cursor is None:
        return Start(head, reset=False)  # "now": nothing to replay
    foreign = cursor.epoch is not None and cursor.epoch != epoch
    if foreign or cursor.seq < floor or cursor.seq > head:
        return Start(head, reset=True)
    return Start(cursor.seq, reset=False)
