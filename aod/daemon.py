"""`aod serve`: the composition root. Everything the daemon runs is wired here, and only here."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

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
from aod.config_reload import ConfigHolder
from aod.faults import Faults
from aod.forward.job import Forwarder
from aod.ingest.ingestor import Ingestor
from aod.ingest.service import IngestSettings
from aod.ingest.spool import SpoolIngester
from aod.lifecycle.reaper import Reaper, ReaperSettings
from aod.listen_fds import InheritedError, take_inherited_sockets
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
from aod.storage import probe
from aod.storage.database import Database, Storage, open_storage
from aod.storage.lock import DataDirBusy
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
    runner: web.AppRunner | None = None
    lean: LeanServer | None = None
    bound: BoundSocket | None = None
    ctx: AppContext | None = None
    # Jobs started before a start-up step fails must stop before storage closes under them.
    stream_jobs: list[asyncio.Task[None]] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        # After the lock (a busy data dir is the clearer message), before any job starts.
        if inherited.unix is None:  # an inherited socket answers at its path: that is not another daemon
            await asyncio.to_thread(check_socket_path, config.socket_path)
        token = await asyncio.to_thread(ensure_token, config.data_dir)
        holder = ConfigHolder(config)
        # The one writer of session state: the status rules bound once, stuck_after read live.
        facts = FactWriter(lambda: holder.config.lifecycle.stuck_after)
        ingestor = Ingestor(storage.db, _ingest_settings(config), facts)
        control = SessionControl(storage.db, facts, data_dir=config.data_dir, socket_path=config.socket_path)
        ctx = AppContext(config=config, db=storage.db, ingestor=ingestor, token=token,
                         spool_dir=config.data_dir / "spool", control=control)
        storage.db.writer.observer, ingestor.observer = ctx.metrics.committed, ctx.metrics.ingested
        _config_holder(ctx, holder)
        stream_jobs += await _start_stream(ctx, storage.db, holder)
        runner = web.AppRunner(build_app(ctx), handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
                               access_log=logging.getLogger("aiohttp.access"),
                               keepalive_timeout=connections.HEADER_TIMEOUT)
        await runner.setup()
        assert runner.server is not None
        lean = LeanServer(ctx)
        protocol = lean.factory(runner.server)
        bound = await _listen_unix(runner, protocol, config.socket_path, inherited.unix)
        if config.server.tcp or inherited.tcp is not None:
            limit = connections.tcp_connection_limit(fd_limit, config.storage.readers)
            ctx.tcp_address = await _listen_tcp(runner, protocol, config.server.tcp, limit, inherited.tcp)

        spool = SpoolIngester(ctx.spool_dir, ingestor)
        drained = await spool.drain_safely()
        reaper = Reaper(storage.db, lambda: _reaper_settings(ctx.config), facts)
        reaper.observer = ctx.metrics.reaped
        reaper.watch = RuntimeWatch(reaper.wake)  # exits wake it: no polling while nothing happens
        await _reconcile(reaper)
        ctx.ready = True
        notifier.send("READY=1")  # only now: what /readyz answers 200 to
        jobs = {"config-watch": holder.watch(stop), "reaper": reaper.run(stop), "spool-watch": spool.watch(stop),
                "storage-probe": probe.run(storage.db), **_reactions(storage.db, holder, facts),
                **sd_notify.jobs(notifier, storage.db, lambda: ctx.metrics.accepted, watchdog_interval)}
        tasks += [asyncio.create_task(job, name=name) for name, job in jobs.items()]
        ctx.jobs.add(tailer_job(storage.db, lambda: usage_prices(ctx.config))).start()
        ctx.forwarder = Forwarder(storage.db, lambda: ctx.config.forward.postgres)
        ctx.jobs.add(ctx.forwarder.job()).start()
        holder.subscribe(lambda _: ctx.forwarder.wake() if ctx.forwarder else None)  # [forward.postgres] changed?
        log.info("aod is serving", extra={"version": __version__, "pid": os.getpid(), "socket": str(config.socket_path),
                                          "tcp": ctx.tcp_address, "data_dir": str(config.data_dir),
                                          "spooled_events_ingested": drained})
        warn_if_unrouted(config)
        await stop.wait()
        notifier.send("STOPPING=1")
        log.info("stopping")
    finally:
        if ctx is not None:
            ctx.ready = False
            # Streams first: aiohttp's cleanup waits for running handlers, and a stream never ends alone.
            await _stop_stream(ctx.broadcaster, stream_jobs)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ctx is not None:
            await ctx.jobs.stop()
        await _shutdown(runner, lean, storage, bound)
    log.info("stopped")
    return EXIT_OK


def _ingest_settings(config: Config) -> IngestSettings:
    return IngestSettings(
        max_payload_bytes=config.ingest.max_payload_bytes,
        dedup_window=config.ingest.dedup_window,
    )


def _config_holder(ctx: AppContext, holder: ConfigHolder) -> None:
    """The config every part reads, reloaded when its file changes (the watch runs as a job)."""
    ctx.config_errors = holder.errors
    holder.subscribe(lambda new: setattr(ctx, "config", new))
    holder.subscribe(lambda new: ctx.ingestor.configure(_ingest_settings(new)))


def _reactions(db: Database, holder: ConfigHolder, facts: FactWriter) -> dict[str, Coroutine[Any, Any, None]]:
    """The SCM observer, the reaction engine, and its two outboxes (nudges, pages)."""

    def recorded(_: object) -> None:
        nudger.wake()
        deliveries.wake()

    engine = ReactionEngine(db, holder, on_recorded=recorded)
    faults = Faults.from_environ(os.environ)  # the test seam (AOD_FAULT_PAUSE), read once, here
    deliveries = DeliveryWorker(db, holder, faults)
    nudger = Nudger(db, send_to_session, on_given_up=engine.touch, faults=faults)
    db.add_commit_listener(engine.wake)
    holder.subscribe(engine.sweep)
    return {"scm-observer": ScmObserver(db, holder, facts).run(), "reactions": engine.run(), "nudger": nudger.run(),
            "deliveries": deliveries.run()}


async def _start_stream(ctx: AppContext, db: Database, holder: ConfigHolder) -> list[asyncio.Task[None]]:
    """The live stream (poller -> broadcaster -> GET /v1/stream) and the retention janitor."""
    broadcaster = Broadcaster(ctx.config.stream.queue_size, ctx.config.stream.ping_interval)
    holder.subscribe(lambda new: broadcaster.configure(new.stream.queue_size, new.stream.ping_interval))
    poller = Poller(db, broadcaster)
    await poller.start()
    ctx.metrics.poller_position = lambda: poller.last
    broadcaster.start()
    ctx.broadcaster = broadcaster
    jobs = {"cdc-poller": poller.run(), "retention": Janitor(db, lambda: ctx.config.retention).run()}
    return [asyncio.create_task(job, name=name) for name, job in jobs.items()]


async def _stop_stream(broadcaster: Broadcaster | None, jobs: list[asyncio.Task[None]]) -> None:
    if broadcaster is not None:
        await broadcaster.close()
    for task in jobs:
        task.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)


def _reaper_settings(config: Config) -> ReaperSettings:
    r = config.reaper
    return ReaperSettings(r.interval, r.grace, r.probe_timeout)


async def _reconcile(reaper: Reaper) -> None:
    """Probe every live session before trusting what the file says about it (it may be from before a crash)."""
    try:
        report = await reaper.tick()
    except Exception:
        log.exception("start-up reconcile failed; the reaper retries every interval")
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


async def _shutdown(runner: web.AppRunner | None, lean: LeanServer | None, storage: Storage,
                    bound: BoundSocket | None) -> None:
    """Stop accepting, let running requests finish briefly, then flush writes and close."""
    try:
        # Together: both wait up to HTTP_SHUTDOWN_TIMEOUT for their requests, within SIGTERM's 5 s.
        await asyncio.gather(*([runner.cleanup()] if runner is not None else []),
                             *([lean.shutdown(HTTP_SHUTDOWN_TIMEOUT)] if lean is not None else []))
        # Only the socket this process bound: a start refused at the socket path bound nothing.
        if bound is not None:
            bound.release()
    finally:
        await storage.close()
