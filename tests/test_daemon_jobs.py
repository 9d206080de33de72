"""The daemon's background jobs: every one shows in /v1/status, a failing one shows how it fails,
and one stop path ends them all (SIGTERM, or a start-up step that fails half-way)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aod.api.app import build_app
from aod.api.context import AppContext
from aod.cli import render
from aod.config import parse_config
from aod.daemon import _context as daemon_context
from aod.jobs import Job
from aod.storage.database import open_storage
from tests.conftest import aod_command
from tests.helpers.daemon import Daemon

EVERY_JOB = {"cdc-poller", "retention", "reaper", "storage-probe", "scm-observer", "reactions", "nudger",
             "deliveries", "config-watch", "spool-watch", "transcripts", "forward"}


def test_status_shows_every_job_and_sigterm_stops_them_all(daemon: Daemon) -> None:
    jobs = daemon.status()["jobs"]
    assert set(jobs) >= EVERY_JOB and not {"sd-status", "sd-watchdog"} & set(jobs)  # no NOTIFY_SOCKET here
    for name, job in jobs.items():
        assert job["state"] in ("waiting", "running"), (name, job)
        assert (job["restarts"], job["last_error"]) == (0, None), (name, job)
    # Asleep until a write fails: nothing is due.
    assert jobs["storage-probe"] == {"state": "waiting", "last_error": None, "restarts": 0, "next_due": None}
    assert jobs["retention"]["next_due"] is not None  # the next prune, a retention.interval away
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    log = daemon.log.read_text()
    assert '"msg":"stopped"' in log
    assert "job failed" not in log and "Task was destroyed" not in log


def test_a_start_that_fails_half_way_stops_what_it_started(data_dir: Path, aod_env: dict[str, str]) -> None:
    # The stream and its jobs start before the TCP listener, which finds its port taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = Daemon(data_dir, aod_env)
        started = time.monotonic()
        done = subprocess.run([*aod_command(), "serve", "--tcp", f"127.0.0.1:{port}"], env=d.env,
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 10
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    # Every part that started stopped on the way out: no task left pending, the socket unbound.
    assert "Task was destroyed" not in done.stderr and "never retrieved" not in done.stderr
    assert not d.socket.exists()


@pytest.fixture
async def served(data_dir: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], AppContext]]:
    """The API in-process on a real (empty) database, with the context as the daemon builds it."""
    config = parse_config({}, data_dir=data_dir, socket=data_dir / "aod.sock")
    storage = await open_storage(data_dir, config.storage)
    ctx = await daemon_context(config, storage.db)  # the daemon's own context, not a copy
    try:
        async with TestClient(TestServer(build_app(ctx))) as client:
            yield client, ctx
    finally:
        await ctx.jobs.stop()
        await storage.close()


async def test_a_failing_job_shows_its_error_and_restarts_in_status(
        served: tuple[TestClient[web.Request, web.Application], AppContext]) -> None:
    client, ctx = served
    failed = asyncio.Event()

    async def disk_on_fire() -> float:
        failed.set()
        raise OSError(28, "No space left on device")

    async def fine() -> None:
        return None

    ctx.jobs.add(Job("on-fire", disk_on_fire))
    ctx.jobs.add(Job("fine", fine))
    ctx.jobs.start()
    await asyncio.wait_for(failed.wait(), 5)
    await asyncio.sleep(0)  # the job records the failure right after the step raised
    reply = await client.get("/v1/status", headers={"Authorization": f"Bearer {ctx.token}"})
    assert reply.status == 200
    jobs = (await reply.json())["jobs"]
    on_fire = jobs["on-fire"]
    assert (on_fire["state"], on_fire["restarts"]) == ("backoff", 1)
    assert on_fire["last_error"] == "OSError: [Errno 28] No space left on device"
    assert on_fire["next_due"] is not None  # when it runs again (a second later: the first pause)
    assert jobs["fine"] == {"state": "waiting", "last_error": None, "restarts": 0, "next_due": None}


def test_aod_status_names_a_failing_job_and_counts_healthy_ones() -> None:
    waiting = {"state": "waiting", "last_error": None, "restarts": 0, "next_due": None}
    healthy = render.status_report({"version": "0.1.0", "jobs": {"reaper": waiting, "cdc-poller": waiting}})
    assert "jobs      2 ok" in healthy
    failing = render.status_report({"version": "0.1.0", "jobs": {
        "reaper": waiting,
        "retention": {"state": "backoff", "last_error": "OSError: [Errno 28] No space left on device", "restarts": 3,
                      "next_due": "2026-11-29T09:40:00.000000Z"}}})
    assert ("jobs      retention FAILING (3 restarts, next try 2026-11-29T09:40:00.000000Z): "
            "OSError: [Errno 28] No space left on device") in failing
    assert "jobs      -" in render.status_report({"version": "0.1.0"})  # an older daemon
