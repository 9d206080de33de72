"""Slow, idle and too many connections against a real `aod serve`: the daemon closes them and
the owner's Unix socket keeps answering; a stream is never cut."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from aod.api.connections import HEADER_TIMEOUT, MAX_TCP_CONNECTIONS, MIN_TCP_CONNECTIONS, tcp_connection_limit
from aod.config import StorageConfig
from tests.conftest import aod_command, hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.rawhttp import auth_header, connect, peer_closed, tcp_address, wait_closed
from tests.helpers.waiting import wait_for

NOFILE = 256
HELD = 300
# A request sent a byte at a time, taking far longer than the header timeout to complete.
SLOW_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"p" * 40 + b"\r\n\r\n"
DRIBBLE_GAP = 0.2
# How late a close may be: the loop's timer granularity, a busy CI machine.
SLACK = 1.5


class FdLimitedDaemon(Daemon):
    """The daemon under a hard open-file limit, as a small service unit or `ulimit -Hn` gives it."""

    def start(self, wait: bool = True) -> FdLimitedDaemon:
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([*aod_command(), "serve"], env=self.env, stdout=self._log_file,
                                     stderr=self._log_file, preexec_fn=_limit_fds)
        if wait:
            self.wait_ready()
        return self


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _need_fds(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"the test process may open only {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def _event() -> dict[str, Any]:
    payload = hook_payload("Stop")
    # A new uid and new content: the dedup window would call a resent Stop a duplicate.
    return {"agent": "claude-code", "uid": uuid.uuid4().hex, "payload": payload | {"nonce": uuid.uuid4().hex}}


class Dribbler(threading.Thread):
    """Sends SLOW_REQUEST to every socket one byte per DRIBBLE_GAP, ignoring the ones closed on it."""

    def __init__(self, socks: list[socket.socket]) -> None:
        super().__init__(daemon=True)
        self.socks = socks
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        for i in range(len(SLOW_REQUEST)):
            if self.stopped.wait(DRIBBLE_GAP):
                return
            for sock in self.socks:
                with contextlib.suppress(OSError):  # the daemon closed it: the point of the test
                    sock.send(SLOW_REQUEST[i:i + 1])
            self.sent = i + 1


def test_a_slow_request_still_takes_longer_than_the_header_timeout() -> None:
    # The tests below rely on it: a dribbled request must not complete before it is cut.
    assert len(SLOW_REQUEST) * DRIBBLE_GAP > HEADER_TIMEOUT + 2 * SLACK


def test_tcp_limit_keeps_a_reserve_and_stays_within_bounds() -> None:
    readers = StorageConfig().readers
    limit = tcp_connection_limit(NOFILE, readers)
    assert 0 < limit < NOFILE - 64
    assert tcp_connection_limit(1 << 20, readers) == MAX_TCP_CONNECTIONS
    assert tcp_connection_limit(64, readers) == MIN_TCP_CONNECTIONS
    # More SQLite readers hold more descriptors: less room for TCP.
    assert tcp_connection_limit(NOFILE, 64) < limit


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    code = "from aod.api.connections import raise_fd_limit; import resource; " \
           "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, 2 * NOFILE)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(2 * NOFILE), str(2 * NOFILE)]


def test_held_tcp_connections_past_the_fd_limit_leave_the_unix_socket_answering(
    data_dir: Path, aod_env: dict[str, str],
) -> None:
    _need_fds(HELD + 128)
    daemon = FdLimitedDaemon(data_dir, aod_env).start()
    limit = tcp_connection_limit(NOFILE, StorageConfig().readers)
    socks: list[socket.socket] = []
    dribbler = Dribbler([])
    try:
        address = tcp_address(daemon)
        opened = time.monotonic()
        socks = [socket.create_connection(address, timeout=5) for _ in range(HELD)]
        # Half stay silent, half send their headers a byte at a time.
        dribbler.socks = socks[::2]
        dribbler.start()

        slowest = 0.0
        for _ in range(5):
            started = time.monotonic()
            assert daemon.get("/healthz", timeout=2).status == 200
            reply = daemon.post("/v1/events", _event(), timeout=2)
            assert reply.status == 202 and reply.body["accepted"] == 1, reply.body
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 0.5, f"a health check and an ingest over the Unix socket took {slowest:.3f}s"

        # Those past the limit were closed at once; the others are still open, well within the timeout.
        closed = wait_for(lambda: sum(peer_closed(s) for s in socks) >= HELD - limit and time.monotonic(), timeout=1)
        assert closed - opened < HEADER_TIMEOUT - SLACK
        assert sum(peer_closed(s) for s in socks) == HELD - limit

        deadline = opened + HEADER_TIMEOUT + SLACK
        while time.monotonic() < deadline and not all(peer_closed(s) for s in socks):
            time.sleep(0.05)
        still_open = sum(not peer_closed(s) for s in socks)
        assert still_open == 0, f"{still_open} connections outlived the header timeout"
        assert dribbler.sent < len(SLOW_REQUEST), "the slow requests completed: they proved nothing"

        # Alive, the places were given back, and the refusals made one warning, not one per connection.
        assert daemon.proc is not None and daemon.proc.poll() is None
        with connect(daemon, "tcp") as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        warnings = [line for line in daemon.log.read_text().splitlines() if "TCP connection limit reached" in line]
        assert len(warnings) == 1
        assert json.loads(warnings[0])["level"] == "warning"
    finally:
        dribbler.stopped.set()
        for sock in socks:
            sock.close()
        daemon.stop()


def test_idle_and_slow_connections_are_closed_but_streams_and_answered_requests_are_not(daemon: Daemon) -> None:
    auth = auth_header(daemon)
    stream_request = b"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\n" + auth + b"\r\n"
    streams = {transport: connect(daemon, transport) for transport in ("tcp", "unix")}
    for sock in streams.values():
        sock.sendall(stream_request)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")

    deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
    idle = {transport: connect(daemon, transport) for transport in ("tcp", "unix")}
    slow = {transport: connect(daemon, transport) for transport in ("tcp", "unix")}
    dribbler = Dribbler(list(slow.values()))
    dribbler.start()
    kept_alive = connect(daemon, "tcp")
    kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200")
    try:
        for name, sock in [*(("idle " + t, s) for t, s in idle.items()), *(("slow " + t, s) for t, s in slow.items()),
                           ("kept-alive tcp", kept_alive)]:
            closed = wait_closed(sock, deadline - time.monotonic())
            assert closed is not None, f"the {name} connection outlived the header timeout"
        assert dribbler.sent < len(SLOW_REQUEST)

        # Well past the timeout the streams are open, and still deliver.
        assert daemon.post("/v1/events", _event()).status == 202
        for transport, sock in streams.items():
            sock.settimeout(5)
            received = b""
            while b"\ndata:" not in received:
                chunk = sock.recv(65536)
                assert chunk, f"the {transport} stream was closed"
                received += chunk
    finally:
        dribbler.stopped.set()
        for sock in [*streams.values(), *idle.values(), *slow.values(), kept_alive]:
            sock.close()


def test_a_request_arriving_just_before_the_timeout_is_answered(daemon: Daemon) -> None:
    # The timeout is on the headers, not on the whole exchange: a slow handler or a late but
    # complete request keeps its connection.
    with connect(daemon, "unix") as sock:
        time.sleep(HEADER_TIMEOUT - SLACK)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_TIMEOUT - SLACK)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
