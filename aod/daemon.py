"""`aod serve`: the composition root. Everything the daemon runs is wired here, and only here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aiohttp import web

from aod import __version__, logs, sd_notify
from aod.api import connections
from aod.api.app import build_app
from aod.api.context import AppContext
from aod.api.lean import LeanServer
from aod.api.security import ensure_token
from aod.cdc.broadcaster import Broadcaster
from aod.cdc.poller import Poller
from aod.config import Config
from aod.config_reload import ConfigHolder, ConfigWatch
from aod.faults import Faults
from aod.forward.job import Forwarder
from aod.ingest.ingestor import Ingestor
from aod.ingest.service import IngestSettings
from aod.ingest.spool import SpoolIngester, SpoolWatch
from aod.jobs import Job
from aod.listen_fds import Inherited, InheritedError, take_inherited_sockets
from aod.lookback.indexer import indexer_job
from aod.maintenance.janitor import Janitor
from aod.notify.routing import warn_if_unrouted
from aod.notify.worker import DeliveryWorker
from aod.ownership import Refused, prepare_data_dir
from aod.reactions.engine import ReactionEngine
from aod.reactions.nudger import Nudger
from aod.runtime.send import send_to_session
from aod.runtime.watch import RuntimeWatch
from aod.scm.observer import ScmObserver
from aod.sessions.control import SessionControl
from aod.sessions.facts import FactWriter
from aod.sessions.reaper import Reaper, ReaperSettings
from aod.storage.database import Database, open_storage
from aod.storage.lock import DataDirBusy
from aod.storage.probe import StorageProbe
from aod.transcripts.tailer import tailer_job
from aod.unix_socket import BoundSocket, bind_unix_socket, check_socket_path
from aod.usage.prices import configured as usage_prices

log = logging.getLogger("aod.daemon")

EXIT_OK = 0
EXIT_START_FAILED = 2
# SIGTERM must end the process within 5 s: leave room for the write flush and checkpoint.
HTTP_SHUTDOWN_TIMEOUT = 2.0


class StartError(RuntimeError):
    """A reason the daemon cannot start, worded for the user."""


def serve(config: Config) -> int:
    logs.setup(config.server.log_level)
    try:
        # Before the lock: the lock file would be the first thing aod writes into a foreign dir.
        prepare_data_dir(config.data_dir)
        return asyncio.run(_serve(config))
    except (StartError, DataDirBusy, Refused, InheritedError) as exc:
        log.error(str(exc))
        return EXIT_START_FAILED


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # First: the variables must be gone before any child process starts.
    inherited = take_inherited_sockets()
    fd_limit = connections.raise_fd_limit()
    notifier, watchdog_interval = sd_notify.Notifier.from_environment()
    storage = await sd_notify.while_migrating(
        notifier, lambda on_pending: open_storage(config.data_dir, config.storage, on_pending))
    try:
        # The one start and the one stop: parts are entered in order and left in reverse, so each
        # stops before what it stands on, also when a later part fails to start.
        async with contextlib.AsyncExitStack() as parts:
            try:
                # After the lock (a busy data dir is the clearer message), before any job starts.
                if inherited.unix is None:  # an inherited socket answers at its path: not another daemon
                    await asyncio.to_thread(check_socket_path, config.socket_path)
                ctx = await _context(config, storage.db)
                jobs = ctx.jobs
                await parts.enter_async_context(_stream(ctx))
                await parts.enter_async_context(_http(ctx, inherited, fd_limit))
                # Streams end first: aiohttp's cleanup waits for running handlers, and a stream never ends alone.
                parts.push_async_callback(ctx.broadcaster.close)
                spool = SpoolIngester(ctx.spool_dir, ctx.ingestor)
                drained = await spool.drain_safely()
                await parts.enter_async_context(_reaper(ctx))
                await parts.enter_async_context(_storage_probe(ctx))
                await parts.enter_async_context(_reactions(ctx))
                await parts.enter_async_context(jobs.running(
                    Job("config-watch", ConfigWatch(ctx.holder, stop).step),
                    Job("spool-watch", SpoolWatch(spool, stop).step),
                    *sd_notify.jobs(notifier, ctx.db, lambda: ctx.metrics.accepted, watchdog_interval),
                    tailer_job(ctx.db, lambda: usage_prices(ctx.config)),
                    indexer_job(ctx.db),
                    *([ctx.forwarder.job()] if ctx.forwarder is not None else [])))
                parts.enter_context(_ready(ctx, notifier))
                log.info("aod is serving", extra={
                    "version": __version__, "pid": os.getpid(), "socket": str(config.socket_path),
                    "tcp": ctx.state.tcp_address, "data_dir": str(config.data_dir),
                    "spooled_events_ingested": drained})
                warn_if_unrouted(config)
                await stop.wait()
                notifier.send("STOPPING=1")
                log.info("stopping")
            finally:
                stop.set()  # the file watchers' threads see it within a step: their jobs then stop at once
    finally:
        await storage.close()
    log.info("stopped")
    return EXIT_OK


async def _context(config: Config, db: Database) -> AppContext:
    """What the request handlers share, built once; config reaches every part through `holder`."""
    token = await asyncio.to_thread(ensure_token, config.data_dir)
    holder = ConfigHolder(config)
    # The one writer of session state: the status rules bound once, stuck_after read live.
    facts = FactWriter(lambda: holder.current.lifecycle.stuck_after)
    ingestor = Ingestor(db, _ingest_settings(config), facts)
    holder.subscribe(lambda new: ingestor.configure(_ingest_settings(new)))
    broadcaster = Broadcaster(config.stream.queue_size, config.stream.ping_interval)
    holder.subscribe(lambda new: broadcaster.configure(new.stream.queue_size, new.stream.ping_interval))
    forwarder = Forwarder(db, lambda: holder.current.forward.postgres)
    holder.subscribe(lambda _: forwarder.wake())  # [forward.postgres] changed?
    ctx = AppContext(
        holder=holder, db=db, ingestor=ingestor, token=token, spool_dir=config.data_dir / "spool",
        control=SessionControl(db, facts, data_dir=config.data_dir, socket_path=config.socket_path),
        broadcaster=broadcaster, forwarder=forwarder)
    db.writer.observer, ingestor.observer = ctx.metrics.committed, ctx.metrics.ingested
    return ctx


def _ingest_settings(config: Config) -> IngestSettings:
    return IngestSettings(
        max_payload_bytes=config.ingest.max_payload_bytes,
        dedup_window=config.ingest.dedup_window,
    )


@contextlib.asynccontextmanager
async def _stream(ctx: AppContext) -> AsyncIterator[None]:
    """The live stream (poller -> broadcaster -> GET /v1/stream) and the retention janitor."""
    poller = Poller(ctx.db, ctx.broadcaster)
    await poller.start()
    ctx.metrics.poller_position = lambda: poller.last
    ctx.broadcaster.start()
    try:
        async with ctx.jobs.running(Job("cdc-poller", poller.step, woken=poller.woken),
                                    Job("retention", Janitor(ctx.db, lambda: ctx.config.retention).step)):
            yield
    finally:
        poller.stop()
        await ctx.broadcaster.close()  # a no-op once the HTTP part's stop closed it


@contextlib.asynccontextmanager
async def _http(ctx: AppContext, inherited: Inherited, fd_limit: int) -> AsyncIterator[None]:
    """The API on the Unix socket and, when configured, loopback TCP; stopped together within SIGTERM's 5 s."""
    config = ctx.config
    runner = web.AppRunner(build_app(ctx), handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
                           access_log=logging.getLogger("aiohttp.access"),
                           keepalive_timeout=connections.HEADER_TIMEOUT)
    await runner.setup()
    lean = LeanServer(ctx)
    bound: BoundSocket | None = None
    try:
        assert runner.server is not None
        protocol = lean.factory(runner.server)
        bound = await _listen_unix(runner, protocol, config.socket_path, inherited.unix)
        if config.server.tcp or inherited.tcp is not None:
            limit = connections.tcp_connection_limit(fd_limit, config.storage.readers)
            ctx.state.tcp_address = await _listen_tcp(runner, protocol, config.server.tcp, limit, inherited.tcp)
        yield
    finally:
        # Together: both wait up to HTTP_SHUTDOWN_TIMEOUT for their requests, within SIGTERM's 5 s.
        await asyncio.gather(runner.cleanup(), lean.shutdown(HTTP_SHUTDOWN_TIMEOUT))
        # Only the socket this process bound: a start refused at the socket path bound nothing.
        if bound is not None:
            bound.release()


@contextlib.asynccontextmanager
async def _reaper(ctx: AppContext) -> AsyncIterator[None]:
    """Reconcile every live session at start-up, then the reaper job (woken by exits and commits)."""
    reaper = Reaper(ctx.db, lambda: _reaper_settings(ctx.config), ctx.control.facts)
    reaper.observer = ctx.metrics.reaped
    reaper.watch = RuntimeWatch(reaper.wake)  # exits wake it: no polling while nothing happens
    try:
        await _reconcile(reaper)
        reaper.listen()
        async with ctx.jobs.running(Job("reaper", reaper.step, woken=reaper.woken, first=reaper.delay())):
            yield
    finally:
        await reaper.close()


@contextlib.asynccontextmanager
async def _storage_probe(ctx: AppContext) -> AsyncIterator[None]:
    """Asleep until a write fails; then a small write every second, until one commits."""
    job = Job("storage-probe", StorageProbe(ctx.db).step)
    ctx.db.health.on_degraded = job.wake_threadsafe  # called from the thread that met the error
    try:
        async with ctx.jobs.running(job):
            yield
    finally:
        ctx.db.health.on_degraded = None


@contextlib.asynccontextmanager
async def _reactions(ctx: AppContext) -> AsyncIterator[None]:
    """The SCM observer, the reaction engine, and its two outboxes (nudges, pages)."""
    db, holder = ctx.db, ctx.holder

    def recorded(_: object) -> None:
        nudger.wake()
        deliveries.wake()

    faults = Faults.from_environ(os.environ)  # the test seam (AOD_FAULT_PAUSE), read once, here
    observer = ScmObserver(db, holder, ctx.control.facts)
    engine = ReactionEngine(db, holder, on_recorded=recorded)
    deliveries = DeliveryWorker(db, holder, faults)
    nudger = Nudger(db, send_to_session, on_given_up=engine.touch, faults=faults)
    unlisten = db.add_commit_listener(engine.wake)
    holder.subscribe(engine.sweep)
    try:
        async with ctx.jobs.running(Job("scm-observer", observer.step),
                                    Job("reactions", engine.step, woken=engine.woken),
                                    Job("nudger", nudger.step, woken=nudger.woken),
                                    Job("deliveries", deliveries.step, woken=deliveries.woken)):
            yield
    finally:
        unlisten()
        # A nudge being typed and pages in flight get a moment to finish (together), then are cut.
        await asyncio.gather(observer.close(), nudger.stop(), deliveries.stop())


@contextlib.contextmanager
def _ready(ctx: AppContext, notifier: sd_notify.Notifier) -> Iterator[None]:
    """Ready last, unready first: /readyz answers 200 only while every part runs."""
    ctx.state.ready = True
    notifier.send("READY=1")
    try:
        yield
    finally:
        ctx.state.ready = False


def _reaper_settings(config: Config) -> ReaperSettings:
    r = config.reaper
    return ReaperSettings(r.interval, r.grace, r.probe_timeout)


async def _reconcile(reaper: Reaper) -> None:
    """Probe every live session before trusting what the file says about it (it may be from before a crash)."""
    try:
        report = await reaper.tick()
    except Exception:
        log.exception("start-up reconcile failed; the reaper job retries")
        return
    log.info("reconciled sessions", extra={"probed": len(report.probed), "lost": report.ended})


async def _listen_unix(runner: web.AppRunner, protocol: connections.ProtocolFactory, path: Path,
                       inherited: socket.socket | None) -> BoundSocket | None:
    if inherited is not None:
        # The service manager's socket (socket activation) outlives this process: not ours to unlink.
        if inherited.getsockname() != str(path):
            log.warning("the inherited Unix socket is not at the configured socket path; clients look there",
                        extra={"inherited": inherited.getsockname(), "socket": str(path)})
        await connections.ProtocolSockSite(runner, inherited, protocol).start()
        log.info("serving on an inherited Unix socket", extra={"socket": inherited.getsockname()})
        return None
    # aod binds the socket itself: asyncio's create_unix_server would delete any socket in its way.
    sock, bound = await asyncio.to_thread(bind_unix_socket, path)
    try:
        await connections.ProtocolSockSite(runner, sock, protocol).start()
    except BaseException:
        sock.close()
        bound.release()
        raise
    return bound


async def _listen_tcp(runner: web.AppRunner, protocol: connections.ProtocolFactory, address: str, limit: int,
                      inherited: socket.socket | None) -> str:
    if inherited is not None:  # socket activation: the unit's address wins over server.tcp
        site = connections.GatedTCPSite(runner, "", 0, connections.TcpGate(limit), protocol, sock=inherited)
    else:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        site = connections.GatedTCPSite(runner, host, int(port), connections.TcpGate(limit), protocol)
    try:
        await site.start()
    except OSError as exc:
        raise StartError(
            f"cannot listen on {address} (server.tcp): {exc.strerror or exc}; choose another address with "
            'server.tcp in the config file or `aod serve --tcp ADDRESS` (--tcp 127.0.0.1:0 takes any free '
            'port, --tcp "" serves on the Unix socket only)'
        ) from None
    log.info("listening on TCP", extra={"connection_limit": limit, "header_timeout": connections.HEADER_TIMEOUT})
    bound_host, bound_port = site.address
    return f"{bound_host}:{bound_port}"
