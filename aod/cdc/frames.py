"""Server-sent event frames for change_log rows (DESIGN §3), encoded once for every subscriber."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from aod.cdc.change_log import Row
from aod.cdc.cursor import format_cursor

RETRY = b"retry: 2000\n\n"
PING = b": ping\n\n"


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One change, ready to send: what the filters look at, and its frame."""

    seq: int
    entity: str
    session_id: str | None
    frame: bytes


def change_frame(epoch: str, row: Row) -> StreamItem:
    seq, at, entity, op, entity_id, session_id, project_id, data = row
    # The trigger's json_object text is compact JSON; embedding it saves a parse and a dump per
    # row. A line break would end the SSE `data:` line, so such text (none expected) is re-encoded.
    payload: object = orjson.Fragment(data) if "\n" not in data else orjson.loads(data)
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
