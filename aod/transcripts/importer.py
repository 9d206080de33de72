"""`aod import claude`: Claude Code transcripts written before aod ran, as what its hooks would have
sent (one session per transcript: SessionStart, prompts, tool calls with their results, Stop, and
SessionEnd once the transcript is an hour quiet) plus one usage item per assistant message.

Pure reading and building (the CLI runs it, then posts the sessions to the daemon in batches,
`POST /v1/import/claude`). Every event's uid is derived from the transcript, so importing again
adds nothing; the daemon skips the events of sessions its hooks already reported and keeps only
their usage.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aod.timefmt import parse_iso
from aod.transcripts.lines import Line, parse

AGENT = "claude-code"
UID_PREFIX = "claude-import:"
# A transcript quiet for this long belongs to a session that is over: it gets a SessionEnd.
ENDED_AFTER_SECONDS = 3600.0
# A tool input's strings are kept this long: enough to read what was done, not a Write's whole file.
MAX_INPUT_CHARS = 2000


@dataclass
class SessionImport:
    agent_session_id: str
    transcript_path: str
    events: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    first_at: str | None = None
    last_at: str | None = None
    ended_in_error: bool = False  # its last line is Claude Code's reply to a failed request
    branch: str | None = None  # the last git branch the transcript names

    def body(self) -> dict[str, Any]:
        return {"agent_session_id": self.agent_session_id, "events": self.events, "usage": self.usage,
                "branch": self.branch}


def transcripts(projects: Path) -> list[Path]:
    """Every transcript under Claude Code's projects directory, subagents' files included. A
    directory that vanishes or cannot be read during the walk is passed over (os.walk's way)."""
    found = [Path(top) / name for top, _, names in os.walk(projects) for name in names if name.endswith(".jsonl")]
    return sorted(p for p in found if p.is_file())  # not a FIFO that happens to be named so


def _uid(session: str, key: str, kind: str) -> str:
    return UID_PREFIX + hashlib.sha256(f"{session}\0{key}\0{kind}".encode()).hexdigest()[:32]


def _whole_lines(path: Path) -> Iterator[bytes]:
    """The file's complete lines: a last line without its newline is still being written."""
    with path.open("rb") as f:
        for raw in f:
            if raw.endswith(b"\n") and raw.strip():
                yield raw


def _shorten(value: Any) -> Any:
    """Long strings of a tool's input cut (a Write's whole file): the event says what was done."""
    if isinstance(value, str):
        return value if len(value) <= MAX_INPUT_CHARS else value[:MAX_INPUT_CHARS] + "…"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


class _Builder:
    def __init__(self, path: Path, sidechain_file: bool) -> None:
        self.path = str(path)
        self.sidechain_file = sidechain_file
        self.sessions: dict[str, SessionImport] = {}
        self.tools: dict[str, tuple[str, Any, str]] = {}  # tool_use_id -> (name, input, occurred_at)

    def _session(self, sid: str) -> SessionImport:
        if sid not in self.sessions:
            self.sessions[sid] = SessionImport(sid, self.path)
        return self.sessions[sid]

    def _event(self, s: SessionImport, line: Line, key: str, kind: str, **fields: Any) -> None:
        payload = {"session_id": s.agent_session_id, "transcript_path": self.path, "cwd": line.cwd,
                   "hook_event_name": kind, **fields}
        s.events.append({"uid": _uid(s.agent_session_id, key, kind), "agent": AGENT, "occurred_at": line.occurred_at,
                         "payload": {k: v for k, v in payload.items() if v is not None}})

    def add(self, raw: bytes) -> None:
        line = parse(raw)
        if line is None or line.session_id is None or line.occurred_at is None:
            return
        s = self._session(line.session_id)
        s.lines += 1
        if line.usage is not None:
            u = line.usage
            s.usage.append({"message_id": u.message_id, "request_id": u.request_id, "agent_session_id": line.session_id,
                            "model": u.model, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                            "cache_creation_input_tokens": u.cache_creation_input_tokens,
                            "cache_creation_1h_tokens": u.cache_creation_1h_tokens,
                            "cache_read_input_tokens": u.cache_read_input_tokens, "occurred_at": line.occurred_at,
                            "is_sidechain": line.is_sidechain})
        if line.is_sidechain or self.sidechain_file:
            return  # a subagent's work: its cost counts for the session, its steps are not the session's
        key = hashlib.sha256(raw.strip()).hexdigest()
        if s.first_at is None:
            s.first_at = line.occurred_at
            self._event(s, line, "start", "SessionStart", source="startup")
        s.last_at = line.occurred_at
        s.ended_in_error = line.api_error is not None
        s.branch = line.git_branch or s.branch
        if line.prompt is not None:
            self._event(s, line, key, "UserPromptSubmit", prompt=_shorten(line.prompt))
        for use in line.tool_uses:
            tool_input = _shorten(use.input)
            self.tools[use.tool_use_id] = (use.name, tool_input, line.occurred_at)
            self._event(s, line, use.tool_use_id, "PreToolUse", tool_name=use.name, tool_input=tool_input,
                        tool_use_id=use.tool_use_id)
        if line.api_error is not None:
            self._event(s, line, key, "StopFailure", error=_shorten(line.api_error))
        for result in line.tool_results:
            name, tool_input, started = self.tools.get(result.tool_use_id, (None, None, None))
            duration = None
            if started is not None:
                duration = max(0, round((parse_iso(line.occurred_at) - parse_iso(started)).total_seconds() * 1000))
            kind = "PostToolUseFailure" if result.is_error else "PostToolUse"
            text = result.text
            extra = {"error": text} if result.is_error else {"tool_response": {"content": text}}
            self._event(s, line, result.tool_use_id, kind, tool_name=name, tool_input=tool_input,
                        tool_use_id=result.tool_use_id, duration_ms=duration, **extra)

    def finish(self, now: float) -> list[SessionImport]:
        for s in self.sessions.values():
            if s.last_at is None:
                continue
            end = Line(type=None, occurred_at=s.last_at, session_id=s.agent_session_id, cwd=_cwd(s),
                       git_branch=None, is_sidechain=False)
            if not s.ended_in_error:  # a Stop would clear the StopFailure's error
                self._event(s, end, f"stop@{s.last_at}", "Stop", stop_hook_active=False)
            if now - parse_iso(s.last_at).timestamp() >= ENDED_AFTER_SECONDS:
                self._event(s, end, f"end@{s.last_at}", "SessionEnd", reason="other")
        return list(self.sessions.values())


def _cwd(s: SessionImport) -> str | None:
    for event in s.events:
        cwd = event["payload"].get("cwd")
        if cwd:
            return str(cwd)
    return None


def read_transcript(path: Path, now: float, since: str | None = None) -> list[SessionImport]:
    """The sessions one transcript holds (usually one). `since`: only sessions active after it."""
    builder = _Builder(path, sidechain_file=path.parent.name == "subagents")
    for raw in _whole_lines(path):
        builder.add(raw)
    found = builder.finish(now)
    if since is not None:
        found = [s for s in found if (s.last_at or max((u["occurred_at"] for u in s.usage), default="")) >= since]
    return found
