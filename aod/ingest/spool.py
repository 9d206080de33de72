"""Ingesting `<data_dir>/spool/*.json`: envelopes the hook client wrote while no daemon answered.

A file is deleted only after the transaction holding its event committed. A file that cannot
become an event goes to dead_letters (in that same transaction) and moves to `spool/rejected/`,
so it never holds back the files after it. Temp files of the hook client start with a dot and
are never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncGenerator
from pathlib import Path

import orjson
import watchfiles

from aod.ingest.ingestor import Ingestor
from aod.storage import dead_letters
from aod.storage.health import classify
from aod.timefmt import now_iso

log = logging.getLogger("aod.spool")
BATCH_FILES = 500
# Files the daemon refused (each has its dead letter): kept for a person to look at, never retried.
REJECTED_DIR = "rejected"
# watchfiles can miss events (e.g. inotify queue overflow): rescan now and then regardless.
RESCAN_SECONDS = 60.0
# How often watchfiles' thread wakes to look for events: each wake takes the GIL, so this is
# idle CPU (20 ms cost ~60 ms per minute); a spooled file is a fallback, a second is soon enough.
WATCH_STEP_MS = 500


def pending_files(spool_dir: Path) -> list[Path]:
    try:
        names = [n for n in os.listdir(spool_dir) if n.endswith(".json") and not n.startswith(".")]
    except FileNotFoundError:
        return []
    return [spool_dir / n for n in sorted(names)]


class SpoolIngester:
    def __init__(self, spool_dir: Path, ingestor: Ingestor) -> None:
        self.spool_dir = spool_dir
        self.rejected_dir = spool_dir / REJECTED_DIR
        self.ingestor = ingestor
        self.ingested = 0
        self._lock = asyncio.Lock()

    async def drain(self) -> int:
        """Ingest every file present now; returns how many files were consumed (stored or set aside).

        Raises only when the database itself fails (the files then stay for the next attempt)."""
        async with self._lock:
            consumed = 0
            while True:
                files = (await asyncio.to_thread(pending_files, self.spool_dir))[:BATCH_FILES]
                if not files:
                    return consumed
                bodies = await asyncio.to_thread(_read_all, files)
                texts = [b.decode(errors="replace") for b in bodies]
                try:
                    summary = await self.ingestor.ingest([_parse(b) for b in bodies], source="spool", bodies=texts)
                    rejected = {r["index"] for r in summary.rejected}
                except Exception as exc:
                    if classify(exc) is not None:
                        raise  # a full or read-only disk: no file is at fault, all stay
                    log.warning("a spool batch failed; ingesting its files one by one", exc_info=True)
                    rejected = await self._one_by_one(files, bodies, texts)
                await asyncio.to_thread(self._settle, files, rejected)
                consumed += len(files)
                self.ingested += len(files) - len(rejected)

    async def drain_safely(self) -> int:
        """`drain`, for callers that must go on whatever happens (the daemon's start, the watcher)."""
        try:
            return await self.drain()
        except Exception as exc:
            log.warning("the spool could not be ingested now; its files stay for the next attempt",
                        extra={"error": f"{type(exc).__name__}: {exc}"})
            return 0

    async def _one_by_one(self, files: list[Path], bodies: list[bytes], texts: list[str]) -> set[int]:
        """Indexes of the files that are poison: their ingest fails alone while a dead letter can
        still be written. If that fails too, the database is at fault, not the files: raise."""
        poison = set()
        for index, (path, body, text) in enumerate(zip(files, bodies, texts, strict=True)):
            try:
                summary = await self.ingestor.ingest([_parse(body)], source="spool", bodies=[text])
            except Exception as exc:
                if classify(exc) is not None:
                    raise
                error = f"could not ingest spool file {path.name}: {type(exc).__name__}: {exc}"
                await self.ingestor.db.write(
                    functools.partial(dead_letters.add, source="spool", error=error, body=text, now=now_iso())
                )
                poison.add(index)
                continue
            if summary.rejected:
                poison.add(index)
        return poison

    def _settle(self, files: list[Path], rejected: set[int]) -> None:
        """Stored files go; refused ones (already in dead_letters) move aside, out of the next drain's way."""
        for index, path in enumerate(files):
            with contextlib.suppress(FileNotFoundError):
                if index in rejected:
                    self.rejected_dir.mkdir(mode=0o700, exist_ok=True)
                    os.replace(path, self.rejected_dir / path.name)
                else:
                    path.unlink()


class SpoolWatch:
    """The job that drains the spool whenever a file appears: one step per batch of changes
    (or per RESCAN_SECONDS), until `stop` is set (it reaches the watcher's thread within a step)."""

    def __init__(self, ingester: SpoolIngester, stop: asyncio.Event) -> None:
        self._ingester = ingester
        self._stop = stop
        self._changes: AsyncGenerator[set[tuple[watchfiles.Change, str]], None] | None = None

    async def step(self) -> float | None:
        if self._changes is None:
            spool_dir = self._ingester.spool_dir
            await asyncio.to_thread(spool_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
            self._changes = watchfiles.awatch(
                spool_dir,
                watch_filter=_is_envelope_file,
                debounce=50,
                step=WATCH_STEP_MS,
                stop_event=self._stop,
                rust_timeout=int(RESCAN_SECONDS * 1000),
                yield_on_timeout=True,
                recursive=False,
            )
        try:
            await anext(self._changes)
        except BaseException as exc:
            self._changes = None  # ended: the next step (if any) watches afresh
            if isinstance(exc, StopAsyncIteration):
                return None if self._stop.is_set() else 0.0
            raise
        await self._ingester.drain_safely()
        return 0.0


def rejected_count(spool_dir: Path) -> int:
    try:
        return sum(1 for n in os.listdir(spool_dir / REJECTED_DIR) if n.endswith(".json"))
    except OSError:
        return 0


def _is_envelope_file(change: watchfiles.Change, path: str) -> bool:
    name = os.path.basename(path)
    return change != watchfiles.Change.deleted and name.endswith(".json") and not name.startswith(".")


def _read_all(files: list[Path]) -> list[bytes]:
    bodies = []
    for path in files:
        try:
            bodies.append(path.read_bytes())
        except OSError as exc:
            bodies.append(f"<unreadable spool file {path.name}: {exc}>".encode())
    return bodies


def _parse(body: bytes) -> object:
    # Unparsable bytes become a non-object item, which ingest refuses into dead_letters.
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


def _unlink_all(files: list[Path]) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
