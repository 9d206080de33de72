"""Server-sent event frames for change_log rows (DESIGN §3), encoded once for every subscriber."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from aod.cdc.cursor import format_cursor
from aod.storage.change_log import Row
from aod.storage.rows import BOOLEANS, FLAG_NAMES, as_booleans

RETRY = b"retry: 2000\n\n"
PING = b": ping\n\n"

# The table behind each entity the change_log triggers write (aod/migrations), for its flags.
ENTITY_TABLES = {
    "session": "sessions", "event": "events", "pr": "prs", "check": "pr_checks", "escalation": "escalations",
    "usage": "session_usage",
}
_ENTITY_FLAGS = {entity: BOOLEANS.get(table, ()) for entity, table in ENTITY_TABLES.items()}


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One change, ready to send: what the filters look at, and its frame."""

    seq: int
    entity: str
    session_id: str | None
    frame: bytes


def change_frame(epoch: str, row: Row) -> StreamItem:
    seq, at, entity, op, entity_id, session_id, project_id, data = row
    # The trigger's json_object text is compact JSON, with flags as SQLite's 0/1. Text without
    # flags is embedded as it is (saving a parse and a dump); flags are converted here, once per
    # row on the reader, rather than in the triggers, which would cost every write and leave the
    # rows already logged with 0/1. An entity this module does not know is converted by name.
    # A line break would end the SSE `data:` line, so such text (none expected) is re-encoded.
    flags = _ENTITY_FLAGS.get(entity, FLAG_NAMES)
    payload: object
    if flags or "\n" in data:
        payload = orjson.loads(data)
        if isinstance(payload, dict):
            as_booleans(payload, flags)
    else:
        payload = orjson.Fragment(data)
    body = orjson.dumps({
        "seq": seq, "entity": entity, "op": op, "id": entity_id, "session_id": session_id,
        "project_id": project_id, "at": at, "data": payload,
    })
    frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (format_cursor(epoch, seq).encode(), entity.encode(), body)
    return StreamItem(seq, entity, session_id, frame)


def change_frames(epoch: str, rows: Iterable[Row]) -> list[StreamItem]:
    return [change_frame(epoch, row) for row in rows]


def reset_frame(epoch: str, head: int) -> bytes:
    """`reset` carries the head as its id too, so a browser's next reconnect resumes from there."""
    cursor = format_cursor(epoch, head)
    return b"id: %s\nevent: reset\ndata: %s\n\n" % (cursor.encode(), orjson.dumps({"head": cursor}))


def replay_frame(row: tuple[int, str | None, str | None, str, str], replay: dict[str, object]) -> bytes:
    """An `event` frame of a session replay (`GET /v1/sessions/{id}/replay`): the body of the
    stream's event frames for `row` (aod.storage.events.stream_rows), `at` the time the event
    occurred, `replay` the pacing it got; the event id is the SSE id a reconnect resumes after."""
    event_id, session_id, project_id, data, occurred_at = row
    payload = orjson.loads(data)
    as_booleans(payload, _ENTITY_FLAGS["event"])
    body = orjson.dumps({
        "seq": None, "entity": "event", "op": "insert", "id": event_id, "session_id": session_id,
        "project_id": project_id, "at": occurred_at, "data": payload, "replay": replay,
    })
    return b"id: %d\nevent: event\ndata: %s\n\n" % (event_id, body)
