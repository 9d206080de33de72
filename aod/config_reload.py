"""The live config: one holder every component reads, and a watcher that reloads the file.

Components keep a reference to the holder, never to a Config, so a change applies the next
time they look. An invalid file keeps the last good config; its error stays in `errors`
(reported by `/v1/status`) until the file is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

import watchfiles

from aod.config import Config, ConfigError, parse_config, resolve_config_path

log = logging.getLogger("aod.config")

# What the daemon wires once at start-up (listeners, the storage engine, aiohttp's body limit);
# every other setting applies on reload, read afresh or pushed to its part by a listener.
RESTART_ONLY = ("server", "storage", "ingest.max_body_bytes")
# Editors save in bursts (write, rename, chmod): one reload after the burst settles.
DEBOUNCE_MS = 200

Listener = Callable[[Config], None]


class ConfigHolder:
    def __init__(self, config: Config) -> None:
        self.config = config
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
            return parse_config({}, None, data_dir=self.config.data_dir, socket=self.config.socket_path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file: {exc}", source=str(self.path)) from None
        return parse_config(text, self.path, data_dir=self.config.data_dir, socket=self.config.socket_path)

    async def reload(self) -> bool:
        """Read the file again; True when a valid config is now in effect."""
        try:
            new = await asyncio.to_thread(self._read)
        except ConfigError as exc:
            self.errors[:] = [str(exc)]
            log.warning("config file invalid; keeping the last good config", extra={"error": str(exc)})
            return False
        self.errors.clear()
        if new == self.config:
            return True
        later = restart_needed(self.config, new)
        self.config = new
        log.info("config reloaded", extra={"path": str(self.path), "needs_restart": later})
        for listener in tuple(self._listeners):
            listener(new)
        return True

    async def watch(self) -> None:
        """Reload whenever the file changes; runs until cancelled."""
        directory, name = self.path.parent, self.path.name
        if not directory.is_dir():
            log.info("config directory does not exist; not watching it", extra={"path": str(directory)})
            return
        log.info("watching the config file", extra={"path": str(self.path)})
        async for _ in watchfiles.awatch(
            directory,
            watch_filter=lambda _change, path: os.path.basename(path) == name,
            debounce=DEBOUNCE_MS,
            recursive=False,
        ):
            await self.reload()


def restart_needed(old: Config, new: Config) -> list[str]:
    """The changed settings (a section or a dotted key of RESTART_ONLY) that wait for a restart."""
    def value(config: Config, dotted: str) -> object:
        section, _, key = dotted.partition(".")
        found = getattr(config, section)
        return getattr(found, key) if key else found

    return [name for name in RESTART_ONLY if value(old, name) != value(new, name)]
