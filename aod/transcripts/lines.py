"""One line of a Claude Code transcript (`~/.claude/projects/<project>/<session>.jsonl`), read
tolerantly: a line that is not JSON, or not an object, or lacks a field, gives what it has.

Assistant lines carry `message.model`, `message.usage` (`input_tokens`, `output_tokens`,
`cache_creation_input_tokens`, `cache_read_input_tokens`, and `cache_creation` split into
`ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`), `message.id` and `requestId`; every
line has `timestamp`, `sessionId`, `cwd`, `gitBranch`, `isSidechain`. User lines carry the prompt
(`message.content` as text or text blocks) or `tool_result` blocks; assistant lines `tool_use`
blocks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from aod.timefmt import normalize_iso


@dataclass(frozen=True)
class UsageLine:
    message_id: str
    request_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int  # 5 m and 1 h writes together, as the API reports them
    cache_creation_1h_tokens: int
    cache_read_input_tokens: int

    @property
    def cache_creation_5m_tokens(self) -> int:
        return self.cache_creation_input_tokens - self.cache_creation_1h_tokens


@dataclass(frozen=True)
class ToolUse:
    tool_use_id: str
    name: str
    input: Any


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    is_error: bool
    text: str = ""  # what the tool answered, its first RESULT_CHARS characters


@dataclass(frozen=True)
class Line:
    type: str | None
    occurred_at: str | None  # stored form (aod.timefmt)
    session_id: str | None  # Claude Code's own session id
    cwd: str | None
    git_branch: str | None
    is_sidechain: bool
    usage: UsageLine | None = None
    prompt: str | None = None
    tool_uses: tuple[ToolUse, ...] = field(default_factory=tuple)
    tool_results: tuple[ToolResult, ...] = field(default_factory=tuple)
    api_error: str | None = None  # Claude Code's own reply for a failed request (isApiErrorMessage)


# A tool's answer is kept this long: enough to read what happened (an import's PostToolUse).
RESULT_CHARS = 2000


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content[:RESULT_CHARS]
    texts = [b["text"] for b in _blocks(content) if isinstance(b.get("text"), str)]
    return "\n".join(texts)[:RESULT_CHARS]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    # bool is an int to Python: a `true` is no token count.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _when(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalize_iso(value)
    except ValueError:
        return None


def _usage(raw: bytes, doc: dict[str, Any], message: dict[str, Any]) -> UsageLine | None:
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    split = usage.get("cache_creation")
    one_hour = _count(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    creation = _count(usage.get("cache_creation_input_tokens"))
    message_id, request_id = _text(message.get("id")), _text(doc.get("requestId"))
    if message_id is None or request_id is None:
        # The same line read twice must still count once: its content is its key.
        message_id, request_id = "sha256:" + hashlib.sha256(raw.strip()).hexdigest(), ""
    return UsageLine(
        message_id=message_id,
        request_id=request_id,
        model=_text(message.get("model")) or "unknown",
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cache_creation_input_tokens=creation,
        cache_creation_1h_tokens=min(one_hour, creation),
        cache_read_input_tokens=_count(usage.get("cache_read_input_tokens")),
    )


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _prompt(content: Any) -> str | None:
    if isinstance(content, str):
        return content or None
    texts = [b["text"] for b in _blocks(content) if b.get("type") == "text" and isinstance(b.get("text"), str)]
    return "\n".join(texts) or None


def parse(raw: bytes) -> Line | None:
    """The line's facts, or None when it is no JSON object."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = _text(doc.get("type"))
    message = doc.get("message")
    message = message if isinstance(message, dict) else {}
    usage, prompt = None, None
    uses: tuple[ToolUse, ...] = ()
    results: tuple[ToolResult, ...] = ()
    blocks = _blocks(message.get("content"))
    api_error = None
    if kind == "assistant":
        usage = _usage(raw, doc, message)
        if doc.get("isApiErrorMessage") is True:
            api_error = _prompt(message.get("content")) or "API error"
        uses = tuple(ToolUse(b["id"], str(b.get("name") or ""), b.get("input")) for b in blocks
                     if b.get("type") == "tool_use" and _text(b.get("id")))
    elif kind == "user":
        results = tuple(ToolResult(b["tool_use_id"], b.get("is_error") is True, _result_text(b.get("content")))
                        for b in blocks
                        if b.get("type") == "tool_result" and _text(b.get("tool_use_id")))
        if not results and not doc.get("isMeta"):
            prompt = _prompt(message.get("content"))
    return Line(
        type=kind,
        occurred_at=_when(doc.get("timestamp")),
        session_id=_text(doc.get("sessionId")),
        cwd=_text(doc.get("cwd")),
        git_branch=_text(doc.get("gitBranch")),
        is_sidechain=doc.get("isSidechain") is True,
        usage=usage,
        prompt=prompt,
        tool_uses=uses,
        tool_results=results,
        api_error=api_error,
    )
