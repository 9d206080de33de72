"""The API in the test's own process, for tests that only call routes.

The application `aod serve` assembles (aod.api.app.build_app) on a real database in the test's
data dir, served by aiohttp from a thread on a Unix socket, so a test talks to it exactly as to a
real daemon (tests/helpers/daemon.py's SocketClient: `get`, `post`, `session`, `status`) and the
socket's transport rules (no token) are the daemon's. What it saves is a process start, half a
second or more each.

What it does not run: the lean ingest protocol in front of aiohttp, TCP, signals, and every
background job but the stream's (poller, retention janitor): no reaper, reactions, SCM observer,
spool or config watch, forwarding. A test of any of those starts a real `aod serve` (the `daemon`
fixture).

It is built by aod/daemon.py's own functions (the context, the stream part), so it is the
daemon's app and stays so when the daemon's wiring changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import tomllib
from pathlib import Path

from aiohttp import web

from aod import daemon
from aod.api.app import build_app
from aod.api.context import AppContext
from aod.config import parse_config
from aod.storage.database import Storage, open_storage
from tests.helpers.daemon import SocketClient


class InProcessApi(SocketClient):
    def __init__(self, data_dir: Path, env: dict[str, str], config_text: str = "") -> None:
        self.data_dir = data_dir
        self.socket = data_dir / "aod.sock"
        # What an `aod` command (tests/conftest.py's run_aod) needs to reach this API.
        self.env = {**env, "AOD_DATA_DIR": str(data_dir), "AOD_SOCKET": str(self.socket)}
        self.config_text = config_text
        self.ctx: AppContext | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="inproc-api", daemon=True)
        self._storage: Storage | None = None
        self._runner: web.AppRunner | None = None
        self._parts = contextlib.AsyncExitStack()

    def start(self) -> InProcessApi:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        except BaseException:
            self.stop()  # what did start (the database, its lock, the thread) must not outlive the test
            raise
        return self

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _start(self) -> None:
        config = parse_config(tomllib.loads(self.config_text), data_dir=self.data_dir, socket=self.socket)
        self._storage = storage = await open_storage(self.data_dir, config.storage)
        # The daemon's own composition (the context, then the stream's poller, fan-out and
        # retention janitor): nothing here to keep in step with aod/daemon.py.
        self.ctx = ctx = await daemon._context(config, storage.db)
        await self._parts.enter_async_context(daemon._stream(ctx))
        self._runner = web.AppRunner(build_app(ctx), handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket)).start()
        ctx.state.ready = True

    async def _stop(self) -> None:
        if self.ctx is not None:
            self.ctx.state.ready = False
            await self.ctx.broadcaster.close()  # streams first: the runner's cleanup waits for its handlers
        if self._runner is not None:
            await self._runner.cleanup()
        await self._parts.aclose()
        if self._storage is not None:
            await self._storage.close()
