"""A real SSE client for the stream tests: aiohttp over the daemon's Unix socket (or TCP).

It reads raw byte chunks and splits lines itself, so a test can drop the connection at any
byte, mid-frame included; the parser (the CLI's) dispatches only complete frames.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from aod.cli.client import EventStreamParser


@dataclass
class Frame:
    event: str
    id: str | None
    data: dict[str, Any]
    arrived: float  # time.monotonic() when its last byte arrived

    @property
    def seq(self) -> int:
        return int(self.data["seq"])


@dataclass
class SseConnection:
    response: aiohttp.ClientResponse
    parser: EventStreamParser
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _partial: bytes = b""
    ended: bool = False

    async def read_some(self, max_bytes: int = 65536, timeout: float = 10.0) -> list[Frame]:
        """Read one chunk (at most `max_bytes`); the frames it completed. Sets `ended` at EOF."""
        try:
            async with asyncio.timeout(timeout):
                chunk = await self.response.content.read(max_bytes)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError):
            chunk = b""
        if not chunk:
            self.ended = True
            return []
        now = time.monotonic()
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        new: list[Frame] = []
        for raw in lines:
            line = raw.decode().rstrip("\r")
            if line.startswith(":"):
                self.comments.append(line)
            event = self.parser.feed(line)
            if event is not None:
                new.append(Frame(event.event, event.id, json.loads(event.data), now))
        self.frames.extend(new)
        return new

    async def until(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.ended:
                raise AssertionError(f"stream condition not met (ended={self.ended}, frames={len(self.frames)})")
            await self.read_some(timeout=left)

    @property
    def last_seq(self) -> int:
        changes = [f for f in self.frames if f.event != "reset"]
        return changes[-1].seq if changes else -1

    async def close(self) -> None:
        self.response.close()


class SseClient:
    """One aiohttp session; `connect` opens a stream like a browser's EventSource would."""

    def __init__(self, socket_path: Path | None = None, base: str = "http://localhost",
                 headers: dict[str, str] | None = None) -> None:
        connector = aiohttp.UnixConnector(path=str(socket_path)) if socket_path else aiohttp.TCPConnector()
        self._session = aiohttp.ClientSession(connector=connector, headers=headers or {})
        self._base = base

    async def connect(self, query: str = "", last_event_id: str | None = None,
                      timeout: float = 10.0) -> SseConnection:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        async with asyncio.timeout(timeout):
            response = await self._session.get(f"{self._base}/v1/stream{query}", headers=headers,
                                               timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        return SseConnection(response, EventStreamParser(last_event_id))

    async def get(self, path: str) -> tuple[int, Any]:
        async with self._session.get(f"{self._base}{path}") as resp:
            return resp.status, await resp.json(content_type=None)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self._session.post(f"{self._base}{path}", json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def close(self) -> None:
        await self._session.close()


# --- what the stream tests write and check ------------------------------------------------------

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code" / "PreToolUse.json"


def tool_event(uid: str, session: str = "s-a") -> dict[str, Any]:
    """A distinct PreToolUse envelope (its own tool_use_id, so content dedup never merges two)."""
    payload = json.loads(FIXTURE.read_text())
    payload["tool_use_id"] = f"toolu_{uid}"
    payload["session_id"] = f"agent-{session}"
    return {"uid": uid, "agent": "claude-code", "session": session, "payload": payload}


def db_rows(data_dir: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import sqlite3

    # Read-only from the test process: a WAL reader never blocks the daemon.
    with sqlite3.connect(f"file:{data_dir / 'aod.db'}?mode=ro", uri=True) as c:
        return c.execute(sql, args).fetchall()


def head(data_dir: Path) -> int:
    rows = db_rows(data_dir, "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'")
    return rows[0][0] if rows else 0


def epoch(data_dir: Path) -> str:
    return db_rows(data_dir, "SELECT value FROM meta WHERE key = 'db_epoch'")[0][0]


def seqs_after(data_dir: Path, after: int) -> list[int]:
    return [r[0] for r in db_rows(data_dir, "SELECT seq FROM change_log WHERE seq > ? ORDER BY seq", (after,))]
