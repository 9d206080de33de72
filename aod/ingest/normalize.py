"""From a hook payload to the columns of an `events` row; pure, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from aod.ingest.agents import columns_for
from aod.ingest.columns import EventColumns
from aod.ingest.columns import text as _text
from aod.ingest.envelope import InvalidItem

__all__ = ["EventColumns", "content_key", "dead_letter_text", "event_columns", "stored_payload"]

# Whole-file mirrors that hooks carry and nobody needs twice (the file is on disk).
_MIRRORS = (("tool_response", "originalFile"), ("tool_response", "file", "content"),
            ("tool_response", "file", "base64"), ("file", "content"), ("file", "base64"))
_TRIM_MARK = "…[aod trimmed {} bytes]"
# orjson writes at most 255 levels; a dead letter must keep whatever it was sent, so deeper
# parts are replaced by a mark (orjson.loads accepts 1024 levels).
_DEAD_LETTER_DEPTH = 200
_TOO_DEEP = "…[aod: nested deeper than {} levels]"


def event_columns(payload: Mapping[str, Any], agent: str = "claude-code") -> EventColumns:
    """The columns `payload` gives, read as the hooks of `agent` write it (the envelope's agent)."""
    return columns_for(agent)(payload)


def content_key(session_key: str, kind: str, payload: Mapping[str, Any]) -> str:
    """Identity of an occurrence: the same hook fired twice for it gives the same key."""
    anchor = _text(payload.get("tool_use_id")) or _text(payload.get("prompt_id")) or ""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    for part in (session_key, kind, anchor):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass(slots=True)
class StoredPayload:
    text: str
    original_bytes: int
    trimmed: bool


def stored_payload(payload: Mapping[str, Any], cap: int) -> StoredPayload:
    """The payload as stored: never more than `cap` bytes of JSON."""
    try:
        text = orjson.dumps(payload).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidItem(f"payload: cannot be written back as JSON ({exc}; at most 254 levels of nesting)") from None
    original = len(text.encode())
    if original <= cap:
        return StoredPayload(text, original, False)
    trimmed: Any = orjson.loads(text)
    for path in _MIRRORS:
        _drop(trimmed, path)
    limit = 4096
    while True:
        candidate = orjson.dumps(_cut_strings(trimmed, limit)).decode()
        if len(candidate.encode()) <= cap or limit <= 64:
            break
        limit //= 2
    if len(candidate.encode()) > cap:
        # Too many fields to fit even with short strings: keep what identifies the event.
        keep = ("hook_event_name", "session_id", "cwd", "tool_name", "tool_use_id", "prompt_id", "notification_type")
        candidate = orjson.dumps({k: _cut_strings(payload.get(k), 256) for k in keep if k in payload}).decode()
    return StoredPayload(candidate, original, True)


def _drop(node: Any, path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(path[-1]), str):
        size = len(node[path[-1]].encode())
        node[path[-1]] = _TRIM_MARK.format(size)


def _cut_strings(node: Any, limit: int) -> Any:
    if isinstance(node, str):
        encoded = node.encode()
        if len(encoded) <= limit:
            return node
        return encoded[:limit].decode(errors="ignore") + _TRIM_MARK.format(len(encoded) - limit)
    if isinstance(node, dict):
        return {k: _cut_strings(v, limit) for k, v in node.items()}
    if isinstance(node, list):
        return [_cut_strings(v, limit) for v in node]
    return node


def dead_letter_text(value: object) -> str:
    """`value` as JSON text for a dead letter, whatever it is: parts nested too deep to write are marked."""
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_shallow(value, _DEAD_LETTER_DEPTH), default=str).decode()


def _shallow(node: Any, depth: int) -> Any:
    if not isinstance(node, dict | list):
        return node
    if depth <= 0:
        return _TOO_DEEP.format(_DEAD_LETTER_DEPTH)
    if isinstance(node, dict):
        return {k: _shallow(v, depth - 1) for k, v in node.items()}
    return [_shallow(v, depth - 1) for v in node]
