"""Socket activation with real inherited fds: the test plays systemd's part.

It binds the Unix socket and a TCP port itself, starts `aod serve` with them as fds 3 and 4 and
LISTEN_FDS / LISTEN_PID set (LISTEN_PID by a tiny wrapper that execs aod, as systemd's own fork
does), and keeps them open across a daemon restart.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aod.api.connections import HEADER_TIMEOUT, tcp_connection_limit
from aod.config import StorageConfig
from aod.listen_fds import InheritedError, take_inherited_sockets
from tests.conftest import aod_command, hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.rawhttp import peer_closed
from tests.helpers.waiting import wait_for

NOFILE = 256
PAST_LIMIT = 5

# What systemd does between fork and exec: the fds at 3, 4, …, and LISTEN_PID = the pid that execs aod.
WRAPPER = """
import fcntl, os, resource, sys
if "TEST_NOFILE" in os.environ:  # a hard open-file limit, as a unit's LimitNOFILE= gives it
    nofile = int(os.environ.pop("TEST_NOFILE"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
given = [int(fd) for fd in os.environ.pop("TEST_FDS").split(",")]
copies = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in given]  # above 3, 4, …: no copy lands in place
for fd in given:
    os.close(fd)
for i, fd in enumerate(copies):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(copies))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.fixture
def listeners(short_dir: Path) -> Iterator[tuple[socket.socket, socket.socket]]:
    sock_dir = short_dir / "run"
    sock_dir.mkdir(mode=0o700)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(sock_dir / "aod.sock"))
    os.chmod(sock_dir / "aod.sock", 0o600)
    unix.listen(16)
    tcp = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield unix, tcp
    unix.close()
    tcp.close()


def _activated(data_dir: Path, aod_env: dict[str, str], unix: socket.socket) -> Daemon:
    d = Daemon(data_dir, aod_env)
    d.socket = Path(unix.getsockname())
    d.env["AOD_SOCKET"] = str(d.socket)
    return d


def _start(d: Daemon, fds: list[int], **env_extra: str) -> None:
    env = {**d.env, "TEST_FDS": ",".join(map(str, fds)), **env_extra}
    d._log_file = open(d.log, "ab")  # noqa: SIM115 - Daemon.stop closes it
    command = aod_command()
    if not os.path.isabs(command[0]):
        command[0] = sys.executable
    d.proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *command, "serve"], env=env, pass_fds=fds,
                              stdout=d._log_file, stderr=d._log_file)


def _raw_request(sock: socket.socket, method: str, path: str, body: bytes = b"", headers: str = "") -> None:
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n".encode() + body)


def _response(sock: socket.socket) -> tuple[int, dict]:
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, json.loads(resp.read())


def _event(session: str) -> bytes:
    payload = hook_payload("UserPromptSubmit") | {"session_id": session, "cwd": "/tmp"}
    return json.dumps({"agent": "claude-code", "payload": payload}).encode()


def test_inherited_sockets_serve_and_hold_requests_across_a_restart(
    data_dir: Path, aod_env: dict[str, str], listeners: tuple[socket.socket, socket.socket]
) -> None:
    unix, tcp = listeners
    path = Path(unix.getsockname())
    port = tcp.getsockname()[1]
    d = _activated(data_dir, aod_env, unix)
    _start(d, [unix.fileno(), tcp.fileno()])
    try:
        d.wait_ready()
        status = d.status()
        # The unit's TCP address wins over server.tcp (127.0.0.1:0 here would be some other port).
        assert status["tcp"] == f"127.0.0.1:{port}"
        token = (data_dir / "token").read_text().strip()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/v1/status", headers={"Authorization": f"Bearer {token}"})
        reply = conn.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["pid"] == status["pid"]
        conn.close()

        assert d.stop() == 0
        # systemd's socket, not the daemon's: still there, and still listening.
        assert stat.S_ISSOCK(path.lstat().st_mode)

        # A hook that fires while aod is down: its connect succeeds (the kernel queues it) and it waits.
        hook = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hook.settimeout(20)
        hook.connect(str(path))
        _raw_request(hook, "POST", "/v1/events", _event("queued-1"))
        browser = socket.create_connection(("127.0.0.1", port), timeout=20)
        _raw_request(browser, "GET", "/v1/sessions", headers=f"Authorization: Bearer {token}\r\n")

        _start(d, [unix.fileno(), tcp.fileno()])
        status_code, body = _response(hook)
        assert (status_code, body["accepted"]) == (202, 1)
        status_code, body = _response(browser)
        assert status_code == 200
        hook.close()
        browser.close()
        d.wait_ready()
        assert [s["agent_session_id"] for s in d.get("/v1/sessions").body["items"]] == ["queued-1"]
        assert d.status()["spool"]["backlog"] == 0
        assert not list((data_dir / "spool").glob("*.json"))
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop(signal.SIGKILL)
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_an_inherited_tcp_socket_has_the_same_connection_cap(
    data_dir: Path, aod_env: dict[str, str], listeners: tuple[socket.socket, socket.socket]
) -> None:
    unix, tcp = listeners
    d = _activated(data_dir, aod_env, unix)
    _start(d, [unix.fileno(), tcp.fileno()], TEST_NOFILE=str(NOFILE))
    socks: list[socket.socket] = []
    try:
        d.wait_ready()
        limit = tcp_connection_limit(NOFILE, StorageConfig().readers)
        socks = [socket.create_connection(tcp.getsockname(), timeout=5) for _ in range(limit + PAST_LIMIT)]
        # Well within the header timeout, which would close the others too.
        wait_for(lambda: sum(peer_closed(s) for s in socks) >= PAST_LIMIT, timeout=HEADER_TIMEOUT / 2)
        assert sum(peer_closed(s) for s in socks) == PAST_LIMIT
        assert d.get("/healthz").status == 200
    finally:
        for s in socks:
            s.close()
        if d.proc is not None and d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def test_variables_are_removed_and_an_offer_for_another_pid_is_ignored(
    listeners: tuple[socket.socket, socket.socket],
) -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b", "HOME": "/h"}
    assert take_inherited_sockets(env).unix is None
    assert env == {"HOME": "/h"}  # not passed on to tmux, gh or a notifier either

    # Two Unix sockets at 3 and 4 (a unit aod cannot serve): refused with a message, fds closed.
    unix, _ = listeners
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c",
         "from aod.listen_fds import take_inherited_sockets\ntake_inherited_sockets()"],
        env={**os.environ, "TEST_FDS": f"{unix.fileno()},{other.fileno()}"}, pass_fds=[unix.fileno(), other.fileno()],
        capture_output=True, text=True, timeout=30,
    )
    other.close()
    assert result.returncode != 0
    assert "two unix sockets were passed (fd 4)" in result.stderr
    with pytest.raises(InheritedError, match="not a number"):
        take_inherited_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"})
