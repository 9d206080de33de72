"""How many HTTP connections the daemon holds, and for how long.

A client that connects and then sends nothing, or its headers a byte at a time, must not pin a
file descriptor for long, and a flood of TCP connections must not use up the descriptors that
SQLite, the spool watcher, subprocesses and the owner's Unix socket need.

The header timeout is aiohttp's own keep-alive timer: it is armed when a connection opens and
again when a response has been sent, and when it fires it closes the connection only if no
complete request has arrived (the handler is idle, waiting for one). A request being answered,
an SSE stream included, is never cut by it. So one figure bounds both the time to the first
request's headers and a kept-alive connection's idle time (and the headers of its next request).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from collections.abc import Callable

from aiohttp import web
from yarl import URL

log = logging.getLogger("aod.api.connections")
ProtocolFactory = Callable[[], asyncio.Protocol]

# Local clients send their headers in one write. Idle keep-alive ends at the same figure: a new
# loopback connection costs well under a millisecond, and browsers and urllib3 notice a closed
# idle connection and open another (Node's http server uses the same 5 s keep-alive default).
HEADER_TIMEOUT = 5.0

# The dashboard needs a handful of connections per tab; beyond this a client is misbehaving.
MAX_TCP_CONNECTIONS = 1024
MIN_TCP_CONNECTIONS = 16
# Descriptors kept out of the TCP budget: the Unix socket's clients (a burst of hooks), pipes of
# tmux/gh/notifier subprocesses, watchfiles, the lock, epoll and the listening sockets ...
FD_RESERVE = 96
# ... and per SQLite connection the database and its WAL (the shm is shared), plus a temp file.
FDS_PER_SQLITE_CONNECTION = 3
# The writer and the checkpointer, besides the configured readers.
SQLITE_CONNECTIONS_BESIDES_READERS = 2

# When no hard limit is set (macOS), the kernel refuses more than its per-process maximum.
UNLIMITED_FD_TARGET = 10240

REFUSAL_LOG_INTERVAL = 10.0
# Connections taken per wake-up of the listening socket, so a flood cannot starve the Unix socket.
ACCEPT_BURST = 64
# asyncio's own pause after EMFILE on accept.
ACCEPT_RETRY_DELAY = 1.0


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit and answer the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_FD_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.info("could not raise the open-file limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
    return UNLIMITED_FD_TARGET if soft == resource.RLIM_INFINITY else soft


def tcp_connection_limit(fd_limit: int, readers: int) -> int:
    reserve = FD_RESERVE + FDS_PER_SQLITE_CONNECTION * (readers + SQLITE_CONNECTIONS_BESIDES_READERS)
    return max(MIN_TCP_CONNECTIONS, min(MAX_TCP_CONNECTIONS, fd_limit - reserve))


class TcpGate:
    """Counts open TCP connections; one past the limit is closed as soon as it is accepted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._refused = 0
        self._next_report = 0.0

    def admit(self) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        now = time.monotonic()
        # A flood refuses thousands a second: the log gets one line per interval, not one each.
        if now >= self._next_report:
            log.warning("TCP connection limit reached; closing new connections at once",
                        extra={"limit": self.limit, "refused": self._refused})
            self._refused = 0
            self._next_report = now + REFUSAL_LOG_INTERVAL
        return False

    def release(self) -> None:
        self.open -= 1


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for an admitted connection, giving its place back when it ends."""

    __slots__ = ("_gate", "_inner", "_released")

    def __init__(self, gate: TcpGate, inner: asyncio.Protocol) -> None:
        self._gate = gate
        self._inner = inner
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._gate.release()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ProtocolSockSite(web.SockSite):
    """aiohttp's SockSite (a listening socket aod bound or inherited) serving `protocol` instead of
    the runner's own factory: aod/api/lean.py's, which hands non-ingest requests to aiohttp's."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, protocol: ProtocolFactory) -> None:
        super().__init__(runner, sock)
        self._protocol = protocol

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; SockSite.start would serve runner.server
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, sock=self._sock, backlog=self._backlog)


class GatedTCPSite(web.BaseSite):
    """aiohttp's TCPSite, with every connection passing the gate as it is accepted.

    The accept loop is ours because asyncio's accepts up to a backlog's worth of connections
    before any protocol sees one: at the limit that is a hundred descriptors, and EMFILE, before
    the first could be refused. Here one past the limit is closed before the next is accepted.
    """

    __slots__ = ("_connecting", "_gate", "_given", "_host", "_port", "_protocol", "_sock")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, gate: TcpGate, protocol: ProtocolFactory,
                 sock: socket.socket | None = None) -> None:
        """`protocol`: each connection's first protocol (aod/api/lean.py's, which hands non-ingest
        requests to aiohttp's). `sock`: a listening socket to serve on instead of binding host:port
        (socket activation)."""
        super().__init__(runner)
        self._protocol = protocol
        if sock is not None:
            host, port = sock.getsockname()[:2]
        self._host = host
        self._port = port
        self._gate = gate
        self._given = sock
        self._sock: socket.socket | None = None
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (port 0 asks for any free port)."""
        bound = self._sock.getsockname() if self._sock is not None else (self._host, self._port)
        return bound[0], bound[1]

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        if self._given is not None:
            self._sock, self._given = self._given, None
            self._sock.listen(self._backlog)
        else:
            family, _, _, _, address = (await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM,
                                                               flags=socket.AI_PASSIVE))[0]
            self._sock = socket.create_server(address, family=family, backlog=self._backlog)
        self._sock.setblocking(False)
        loop.add_reader(self._sock.fileno(), self._accept)

    async def stop(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        await super().stop()

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(ACCEPT_BURST):  # then let the loop serve others before taking more
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._pause(exc)
                return
            if not self._gate.admit():
                conn.close()
                continue
            conn.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._connect(conn))
            self._connecting.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        place = _Counted(self._gate, self._protocol())
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: place, conn)
        except BaseException as exc:
            place.release()
            conn.close()
            if not isinstance(exc, Exception):
                raise
            log.warning("could not set up an accepted TCP connection", extra={"error": str(exc)})

    def _pause(self, exc: OSError) -> None:
        """Out of descriptors (or memory): a listening socket stays readable, so stop watching it a while."""
        log.warning("cannot accept TCP connections; retrying shortly", extra={"error": str(exc)})
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._sock.fileno())
        loop.call_later(ACCEPT_RETRY_DELAY, self._resume)

    def _resume(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)
