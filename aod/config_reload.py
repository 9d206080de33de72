"""The live config: one holder every component reads, and a watcher that reloads the file.

Components keep a reference to the holder, never to a Config, and read `holder.current` each
time they need a setting (or subscribe to be told of a new one), so a change applies the next
time they look. An invalid file keeps the last good config; its error stays in `errors`
(reported by `/v1/status`) until the file is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from aod.config import Config, ConfigError, parse_config, resolve_config_path

log = logging.getLogger("aod.config")

# What the daemon wires once at start-up (listeners, the storage engine, aiohttp's body limit);
# every other setting applies on reload, read afresh or pushed to its part by a listener.
RESTART_ONLY = ("server", "storage", "ingest.max_body_bytes")
# Editors save in bursts (write, rename, chmod): one reload after the burst settles.
DEBOUNCE_MS = 200
# How often the watcher also checks by itself (a few stat calls): what inotify cannot see.
POLL_MS = 2000
# Watching the file's own directory, inotify sees everything but the directory's replacement
# (which its event on the directory also reports): the look by itself is only a backstop then.
SETTLED_POLL_MS = 30_000
# watchfiles' thread wakes this often (taking the GIL): its default, 50 ms, is most of an idle daemon's CPU.
WATCH_STEP_MS = 500

Listener = Callable[[Config], None]


class ConfigHolder:
    def __init__(self, config: Config) -> None:
        self.current = config
        self.errors: list[str] = []
        # A file the daemon started with must stay readable; the default location may come and go.
        self.explicit = config.config_path is not None
        self.path = config.config_path or resolve_config_path(None)[0]
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _read(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if self.explicit:
                raise ConfigError("config file not found", source=str(self.path)) from None
            return parse_config({}, None, data_dir=self.current.data_dir, socket=self.current.socket_path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file: {exc}", source=str(self.path)) from None
        return parse_config(text, self.path, data_dir=self.current.data_dir, socket=self.current.socket_path)

    async def reload(self) -> bool:
        """Read the file again; True when a valid config is now in effect."""
        try:
            new = await asyncio.to_thread(self._read)
        except ConfigError as exc:
            self.errors[:] = [str(exc)]
            log.warning("config file invalid; keeping the last good config", extra={"error": str(exc)})
            return False
        self.errors.clear()
        if new == self.current:
            return True
        later = restart_needed(self.current, new)
        self.current = new
        log.info("config reloaded", extra={"path": str(self.path), "needs_restart": later})
        for listener in tuple(self._listeners):
            listener(new)
        return True


class ConfigWatch:
    """The job that reloads the holder whenever the file changes: one step watches one directory.

    The watch is on the file's directory or, while that does not exist, on its nearest existing
    ancestor: never recursive, as that ancestor can be $HOME. A directory appearing on the way
    moves the watch down, one vanishing moves it up (the step ends, and the next watches the new
    place). inotify misses what happens between two watches (a file written right after its new
    directory), so every POLL_MS the watcher also compares the directories and the file with what
    it saw last (every SETTLED_POLL_MS once it watches the file's own directory: an idle daemon
    stays asleep).

    A cancel alone waits for the file watcher's thread to come back, up to SETTLED_POLL_MS:
    `stop` reaches that thread within WATCH_STEP_MS, so the daemon sets it before stopping the job.
    """

    def __init__(self, holder: ConfigHolder, stop: asyncio.Event) -> None:
        self._holder = holder
        self._stop = stop
        self._seen: _Look | None = None

    async def step(self) -> float | None:
        holder, seen = self._holder, self._seen
        now = await asyncio.to_thread(_look, holder.path)
        # The first step reloads too: the file may have changed since the daemon read it.
        if seen is None or now.file != seen.file:
            await holder.reload()
        seen = self._seen = now
        log.info("watching the config file", extra={"path": str(holder.path), "directory": str(now.spot)})
        async with contextlib.aclosing(_changes(now.spot, holder.path, self._stop)) as changes:
            async for relevant in changes:
                now = await asyncio.to_thread(_look, holder.path)
                if now.where != seen.where:
                    break
                # An event on the file (an editor's rename-over-write can keep size and mtime).
                if now.file != seen.file or (relevant and now.spot == holder.path.parent):
                    await holder.reload()
                seen = self._seen = now
        return None if self._stop.is_set() else 0.0


@dataclass(frozen=True)
class _Look:
    # The config file's directory, or its nearest existing ancestor, with its (st_dev, st_ino):
    # a directory deleted and made again is another one, and the old watch sees nothing in it.
    where: tuple[Path, int, int]
    file: tuple[int, int, int, int] | None  # what changes when the file is written or replaced

    @property
    def spot(self) -> Path:
        return self.where[0]


def _look(path: Path) -> _Look:
    where = (Path(path.anchor), 0, 0)  # if not even the root can be read, watching it fails: poll
    for directory in path.parents:
        try:
            st = os.stat(directory)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            where = (directory, st.st_dev, st.st_ino)
            break
    try:
        st = os.stat(path)  # follows a symlink: a dotfiles link is polled through to its target
        file = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        file = None
    return _Look(where, file)


async def _changes(spot: Path, path: Path, stop: asyncio.Event | None = None) -> AsyncGenerator[bool, None]:
    """True after a change to `spot` itself or to its entry on the way to `path`; False every POLL_MS."""
    relevant = {str(spot), str(spot / path.relative_to(spot).parts[0])}
    try:
        async with contextlib.aclosing(watchfiles.awatch(
            spot,
            watch_filter=lambda _change, changed: changed in relevant,
            debounce=DEBOUNCE_MS,
            step=WATCH_STEP_MS,
            recursive=False,
            rust_timeout=POLL_MS if spot != path.parent else SETTLED_POLL_MS,
            yield_on_timeout=True,
            stop_event=stop,
        )) as batches:
            async for batch in batches:
                yield bool(batch)
        if stop is not None and stop.is_set():
            return
    except OSError as exc:
        # Gone since we looked (the caller moves on at the next poll), or no inotify watch left:
        # polling alone still finds every change, only later.
        if not isinstance(exc, FileNotFoundError):
            log.warning("cannot watch the config directory; polling it", extra={"path": str(spot), "error": str(exc)})
    while True:
        await asyncio.sleep(POLL_MS / 1000)
        yield False


def restart_needed(old: Config, new: Config) -> list[str]:
    """The changed settings (a section or a dotted key of RESTART_ONLY) that wait for a restart."""
    def value(config: Config, dotted: str) -> object:
        section, _, key = dotted.partition(".")
        found = getattr(config, section)
        return getattr(found, key) if key else found

    return [name for name in RESTART_ONLY if value(old, name) != value(new, name)]
