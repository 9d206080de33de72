"""Ingesting `<data_dir>/spool/*.json`: envelopes the hook client wrote while no daemon answered.

A file is deleted only after the transaction holding its event committed; a file that cannot
be parsed goes to dead_letters (in that same transaction) and is deleted too, so it is kept
exactly once. Temp files of the hook client start with a dot and are never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import orjson
import watchfiles

from aod.ingest.ingestor import Ingestor

log = logging.getLogger("aod.spool")
BATCH_FILES = 500
# watchfiles can miss events (e.g. inotify queue overflow): rescan now and then regardless.
RESCAN_SECONDS = 5.0


def pending_files(spool_dir: Path) -> list[Path]:
    try:
        names = [n for n in os.listdir(spool_dir) if n.endswith(".json") and not n.startswith(".")]
    except FileNotFoundError:
        return []
    return [spool_dir / n for n in sorted(names)]


class SpoolIngester:
    def __init__(self, spool_dir: Path, ingestor: Ingestor) -> None:
        self.spool_dir = spool_dir
        self.ingestor = ingestor
        self.ingested = 0
        self._lock = asyncio.Lock()

    async def drain(self) -> int:
        """Ingest every file present now; returns how many files were consumed."""
        async with self._lock:
            consumed = 0
            while True:
                files = (await asyncio.to_thread(pending_files, self.spool_dir))[:BATCH_FILES]
                if not files:
                    return consumed
                bodies = await asyncio.to_thread(_read_all, files)
                items = [_parse(body) for body in bodies]
                await self.ingestor.ingest(items, source="spool", bodies=[b.decode(errors="replace") for b in bodies])
                await asyncio.to_thread(_unlink_all, files)
                consumed += len(files)
                self.ingested += len(files)

    async def watch(self, stop: asyncio.Event) -> None:
        """Drain whenever a file appears, until `stop` is set."""
        await asyncio.to_thread(self.spool_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        watcher = watchfiles.awatch(
            self.spool_dir,
            watch_filter=_is_envelope_file,
            debounce=50,
            step=20,
            stop_event=stop,
            rust_timeout=int(RESCAN_SECONDS * 1000),
            yield_on_timeout=True,
            recursive=False,
        )
        async for _ in watcher:
            try:
                await self.drain()
            except Exception:
                log.exception("spool ingest failed; files stay for the next attempt")


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
