"""The live tailer: the transcripts of live Claude Code sessions, read as they grow.

Every hook payload names the session's `transcript_path`; the transcripts of live sessions (and
their subagents' files under `<session>/subagents/`) are read from their stored offsets, and the
usage rows of the whole lines read are stored with the new offset in one transaction. A watch on
their directories wakes the job when a file changes; the step also runs every few seconds to find
the transcripts of sessions that started since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from aod.jobs import Job
from aod.storage import usage
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, now_iso
from aod.transcripts import lines, tail
from aod.transcripts.rows import usage_rows
from aod.usage.prices import PriceTable

log = logging.getLogger("aod.transcripts")

# How often the step runs. It looks for new sessions' transcripts and reads only when something
# happened since (a commit: maybe a new session; a watched file changed), else every FALLBACK_EVERY
# (a change no watch reported): an idle daemon pays one query per FALLBACK_EVERY, not per step.
DISCOVER_EVERY = 2.0
FALLBACK_EVERY = 30.0
# An ended session's transcript is still read this long: its last lines may follow SessionEnd.
AFTER_THE_END = 600.0


@dataclass(frozen=True)
class Tracked:
    session_id: str
    position: tail.Position


def _files(transcript: str) -> tuple[list[str], bool]:
    """A session's transcript and its subagents', and whether its directory exists (blocking)."""
    path = Path(transcript)
    subagents = path.with_suffix("") / "subagents"
    try:
        extra = sorted(str(p) for p in subagents.glob("*.jsonl"))
    except OSError:
        extra = []
    return [transcript, *extra], path.parent.is_dir()


class TranscriptTailer:
    def __init__(self, db: Database, prices: Callable[[], PriceTable]) -> None:
        self._db = db
        self._prices = prices
        self._tracked: dict[str, Tracked] = {}
        self._loaded = False
        self._watch: asyncio.Task[None] | None = None
        # Set to end the watch: its thread sees it within one `step` (50 ms), where a cancel alone
        # waits for the thread's 5 s timeout (a SIGTERM must end the daemon within 5 s).
        self._watch_stop = asyncio.Event()
        self._watched: frozenset[str] = frozenset()
        self.wake: Callable[[], None] = lambda: None  # set to the Job's wake
        self._changed = True  # a commit or a watched file since the last pass
        self._last_pass = 0.0
        self._more = False
        self._unsubscribe = db.add_commit_listener(self._committed)

    def _committed(self) -> None:
        self._changed = True

    async def step(self) -> float | None:
        if not (self._changed or self._more or time.monotonic() - self._last_pass >= FALLBACK_EVERY):
            return DISCOVER_EVERY
        self._changed, self._last_pass = False, time.monotonic()
        try:
            return await self._pass()
        except BaseException:
            self._changed = True  # the Job's retry must not find nothing to do
            raise

    async def _pass(self) -> float:
        if not self._loaded:
            stored = await self._db.read(usage.offsets)
            self._tracked = {p: Tracked(r["session_id"], tail.Position(r["offset"], r["inode"], r["fingerprint"]))
                             for p, r in stored.items() if r["session_id"] is not None}
            self._loaded = True
        ended_since = iso_from_seconds(time.time() - AFTER_THE_END)
        live = await self._db.read(lambda c: usage.live_transcripts(c, ended_since))
        wanted: dict[str, str] = {}
        dirs: set[str] = set()
        found = await asyncio.to_thread(lambda: [_files(transcript) for _, transcript in live]) if live else []
        for (session_id, transcript), (files, exists) in zip(live, found, strict=True):
            wanted.update(dict.fromkeys(files, session_id))
            if exists:
                dirs.add(str(Path(transcript).parent))
        more = False
        for path, session_id in wanted.items():
            more |= await self._read(path, session_id)
        self._follow(frozenset(dirs))
        self._more = more
        return 0.0 if more else DISCOVER_EVERY

    async def _read(self, path: str, session_id: str) -> bool:
        """Store what was appended to one file; True when more whole lines wait."""
        tracked = self._tracked.get(path)
        at = tracked.position if tracked is not None and tracked.session_id == session_id else tail.START
        chunk = await asyncio.to_thread(tail.read, path, at)
        if chunk is None or (not chunk.lines and chunk.position == at):
            return False
        if chunk.restarted:
            log.info("transcript rewritten: reading it again from its start", extra={"path": path})
        # Only assistant lines carry usage; the rest (tool results of many KB) need no JSON parse.
        parsed = [line for raw in chunk.lines if b'"usage"' in raw and (line := lines.parse(raw)) is not None]
        rows = usage_rows(parsed, self._prices(), session_id)
        pos = chunk.position
        offset = usage.Offset(path, session_id, pos.offset, pos.inode, pos.fingerprint)
        await self._db.write(lambda c: usage.store(c, rows, now_iso(), offset))
        self._tracked[path] = Tracked(session_id, pos)
        return chunk.more

    def _follow(self, dirs: frozenset[str]) -> None:
        """Watch exactly these directories (restarting the watch when the set changed or it ended)."""
        if dirs == self._watched and (self._watch is None or not self._watch.done()):
            return
        self._watch_stop.set()  # the old watch ends by itself
        self._watched, self._watch, self._watch_stop = dirs, None, asyncio.Event()
        if dirs:
            self._watch = asyncio.create_task(self._watching(dirs, self._watch_stop), name="transcript-watch")

    async def _watching(self, dirs: frozenset[str], stop: asyncio.Event) -> None:
        # debounce: Claude Code appends a few lines per message; one read takes them all.
        async for _ in watchfiles.awatch(*dirs, debounce=200, step=50, recursive=True, stop_event=stop,
                                          watch_filter=lambda _, p: p.endswith(".jsonl")):
            self._changed = True
            self.wake()

    async def close(self) -> None:
        self._unsubscribe()
        self._watch_stop.set()
        if self._watch is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._watch, 2.0)
            self._watch = None


class TailerJob(Job):
    """The tailer as a daemon job: its directory watch wakes it, and stops with it."""

    def __init__(self, tailer: TranscriptTailer) -> None:
        super().__init__("transcripts", tailer.step)
        self.tailer = tailer
        tailer.wake = self.wake

    async def stop(self) -> None:
        await super().stop()
        await self.tailer.close()


def tailer_job(db: Database, prices: Callable[[], PriceTable]) -> TailerJob:
    return TailerJob(TranscriptTailer(db, prices))
