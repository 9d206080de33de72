"""`POST /v1/events` and `POST /v1/hooks/{agent}` on a small HTTP/1.1 protocol; the rest on aiohttp.

Why: aiohttp's request machinery costs ~130-160 µs of CPU per request on the 2-core machine,
more than aod's own work per event; an asyncio.Protocol on httptools (llhttp) costs ~30 µs.

Every connection, on the Unix socket and on TCP, starts here. Each request's head is parsed
and its request line decides: POST to one of the two ingest paths (a plain path: no escapes,
no absolute form) is answered here, with the same checks and errors as aiohttp's routes
(aod/api/security.py, bodies.py, errors.py, ingest_routes.py). The first request that is not
hands the connection to aiohttp's RequestHandler for good, with that request's bytes and all
that followed replayed to it, once the answers to the ingest requests before it were written
(answers keep their order). So the decision is per request until one is not ingest, then per
connection: the hook client and the bench send only ingest; a browser or the CLI sends no ingest.

llhttp does not tell where in a read a request ended, so the parser is fed one request at a
time: the head up to its blank line, a Content-Length body up to its length, a chunked body
line by line. Where the next request starts is then always known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus

import httptools
import orjson

from aod.api import ingest_routes
from aod.api.bodies import RefusedBody, check_content_type, parse_json, too_large
from aod.api.connections import HEADER_TIMEOUT
from aod.api.context import AppContext
from aod.api.errors import ApiError, error_body, failure
from aod.api.security import authorized, refusal, unauthorized

log = logging.getLogger("aod.api.lean")
EVENTS_PATH = b"/v1/events"
HOOKS_PREFIX = b"/v1/hooks/"
# aiohttp refuses a header line over 8190 bytes; a whole head over this is no client of ours.
MAX_HEAD = 64 * 1024
# After a refusal that left input unread: how long, and how much, is read and dropped before closing.
LINGER = 2.0
LINGER_BYTES = 16 * 1024 * 1024
HEAD_END = b"\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# "HTTP/1.1 202 Accepted" and the like: formatted once per status, not once per answer.
_STATUS_LINES: dict[int, bytes] = {}
SHUTDOWN_POLL = 0.02


def ingest_route(method: bytes | str, url: bytes) -> str | None:
    """The agent of a hook path, "" for /v1/events, None for a request aiohttp answers."""
    if method not in (b"POST", "POST"):
        return None
    path = url.partition(b"?")[0]
    if path == EVENTS_PATH:
        return ""
    agent = path[len(HOOKS_PREFIX):] if path.startswith(HOOKS_PREFIX) else b""
    # Anything aiohttp would decode or match differently (escapes, more segments) goes to it.
    if agent and agent.isascii() and not any(c in agent for c in b"/%#{}"):
        return agent.decode()
    return None


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
    return line


def _mimetype(header: bytes | None) -> str:
    # aiohttp's request.content_type: the media type without parameters, lowercased.
    if not header:
        return "application/octet-stream"
    return header.split(b";", 1)[0].strip().lower().decode("latin-1")


class _Request:
    __slots__ = ("agent", "body", "keep_alive", "refused")

    def __init__(self, agent: str | None, keep_alive: bool) -> None:
        self.agent = agent
        self.body = bytearray()
        self.keep_alive = keep_alive
        self.refused: ApiError | None = None  # refused at its head: answered without its body


class LeanServer:
    """The lean connections of one daemon, for shutdown."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.connections: set[LeanProtocol] = set()

    def factory(self, aiohttp_server: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for the listening sites, in place of aiohttp's `runner.server`."""
        return lambda: LeanProtocol(self, aiohttp_server)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections now, busy ones after their answer, and any left at `timeout`."""
        for conn in list(self.connections):
            conn.close_when_idle()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(SHUTDOWN_POLL)
        for conn in list(self.connections):
            conn.abort()


class LeanProtocol(asyncio.Protocol):
    def __init__(self, server: LeanServer, aiohttp_server: Callable[[], asyncio.Protocol]) -> None:
        self._server = server
        self._ctx = server.ctx
        self._make_inner = aiohttp_server
        self._inner: asyncio.Protocol | None = None  # aiohttp's, once the connection is handed over
        self._transport: asyncio.Transport | None = None
        self._tcp = False
        self._parser = httptools.HttpRequestParser(self)
        self._head = bytearray()  # the current request's head as read so far (replayed on a hand-over)
        self._url = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._body_left: int | None = None  # of a Content-Length body being read
        self._chunked = False
        self._request: _Request | None = None
        self._handover: bytearray | None = None  # bytes for aiohttp, once earlier answers are written
        self._stopped = False  # no more input is parsed: a refused head or a broken request
        self._dropped = 0  # bytes read and dropped since
        self._queue: deque[_Request] = deque()
        # One task per connection answers its requests in turn and parks on `_waiter` while none
        # is owed: creating a task for every request cost ~20% of the lean path's CPU (py-spy).
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        # The idle timer is armed once and checked lazily: arming and cancelling a loop timer
        # for every request cost ~1.4 µs each; now a request only stamps or clears `_idle_since`.
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # loop time since when no complete request is in
        self._closing = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # A Unix socket's peer name is a string (often empty); TCP's is a (host, port) tuple.
        self._tcp = isinstance(transport.get_extra_info("peername"), tuple)
        self._server.connections.add(self)
        self._arm_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._drop_timer()
        self._stop_answering()
        self._closing = True
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        # A client that half-closes after its request (`nc -N`) still gets the answer: keep the
        # writing side open until the requests read so far were answered.
        self._closing = True
        return self._answering or bool(self._queue) or None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
            return
        if self._handover is not None:
            self._handover += data
            return
        if self._stopped:
            # Read and dropped (a lingering close): unread input at close resets the connection.
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES and self._transport is not None:
                self._transport.close()
            return
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            cut = self._next_cut(data, pos)
            if self._request is None and not self._chunked and self._body_left is None:
                self._head += view[pos:cut]
                if len(self._head) > MAX_HEAD:
                    self._fail(ApiError(400, "bad_request", f"the request head is over {MAX_HEAD} bytes"))
                    return
            try:
                self._parser.feed_data(view[pos:cut])
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                # After a head that goes to aiohttp, what follows is aiohttp's to judge.
                if self._handover is None:
                    # One quiet line, as aiohttp logs a bad request: a local client's bug, not aod's.
                    log.info("bad HTTP request", extra={"error": f"{type(exc).__name__}: {exc}"})
                    self._fail(ApiError(400, "bad_request", f"malformed HTTP request: {exc}"))
                    return
            pos = cut
            if self._handover is not None:
                self._handover += view[pos:]
                self._maybe_hand_over()
                return
            if self._stopped:
                return

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        agent = ingest_route(self._parser.get_method(), bytes(self._url))
        if agent is None:
            self._handover = bytearray(self._head)
            return
        request = _Request(agent, self._parser.should_keep_alive())
        self._head.clear()
        # A whole head is a request, as for aiohttp's timer: a body may take longer than the timeout.
        self._cancel_timer()
        request.refused = self._refusal()
        length = self._headers.get(b"content-length")
        expect = self._headers.get(b"expect", b"").lower()
        if request.refused is not None and (length is None or request.refused.status_code == 413
                                            or expect == b"100-continue"):
            # Its body is not read: answer, then close (the rest of the input cannot be framed).
            request.keep_alive = False
            self._stopped = True
            self._enqueue(request)
            return
        # A refused body of a declared size within the limit is read and dropped before the answer:
        # closing with unread input resets the connection, and a client still writing its body
        # (a broken pipe) or reading (a reset) could lose the answer.
        self._request = request
        self._chunked = length is None and b"chunked" in self._headers.get(b"transfer-encoding", b"").lower()
        self._body_left = int(length) if length else None
        if expect == b"100-continue" and not self._answering and not self._queue and self._transport is not None:
            # Only while no answer is pending: a 100 must not overtake an earlier request's answer.
            self._transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None:
            return
        if self._body_left is not None:
            self._body_left -= len(body)
        if request.refused is not None:
            return
        request.body += body
        limit = self._ctx.config.ingest.max_body_bytes
        if len(request.body) > limit:  # a chunked body: its size was not declared
            request.refused, request.keep_alive = too_large(limit, None), False
            request.body = bytearray()
            self._stopped = True
            self._request = None
            self._enqueue(request)

    def on_message_complete(self) -> None:
        if self._handover is not None or self._stopped:
            return
        request, self._request = self._request, None
        self._body_left, self._chunked = None, False
        if request is not None:
            self._enqueue(request)

    # --- reading ---

    def _next_cut(self, data: bytes, pos: int) -> int:
        """Where the part of `data` from `pos` that belongs to the current request's step ends."""
        if self._body_left is not None:
            return min(len(data), pos + max(self._body_left, 0))
        if self._chunked:
            newline = data.find(b"\n", pos)
            return len(data) if newline < 0 else newline + 1
        if self._head:  # the blank line may straddle two reads
            tail = bytes(self._head[-3:])
            found = (tail + data[pos:pos + 3]).find(HEAD_END)
            if found >= 0:
                return pos + found + 4 - len(tail)
        found = data.find(HEAD_END, pos)
        return len(data) if found < 0 else found + 4

    def _refusal(self) -> ApiError | None:
        """What aiohttp's middleware, then the route's body reading, would refuse from the head alone."""
        h = self._headers
        if self._tcp:
            host = h.get(b"host")
            origin = h.get(b"origin")
            refused = refusal("POST", host.decode("latin-1") if host is not None else None,
                              origin.decode("latin-1") if origin is not None else None, "http")
            if refused is not None:
                return refused
            if not authorized(h.get(b"authorization", b"").decode("latin-1"),
                              h.get(b"cookie", b"").decode("latin-1"), self._ctx.token):
                return unauthorized()
        content_type = h.get(b"content-type")
        if content_type != b"application/json":  # what every client of ours sends: nothing to parse
            try:
                check_content_type(_mimetype(content_type))
            except RefusedBody as exc:
                return exc
        length = h.get(b"content-length")
        limit = self._ctx.config.ingest.max_body_bytes
        if length is not None and int(length) > limit:
            return too_large(limit, int(length))
        return None

    def _fail(self, error: ApiError) -> None:
        """A request that cannot be read: answered in turn, then the connection closes."""
        self._stopped = True
        request = _Request(None, False)  # no route: nothing to dead-letter
        request.refused = error
        self._request = None
        self._enqueue(request)

    # --- answering ---

    @property
    def _answering(self) -> bool:
        """Whether an answer is owed or being written (the answering task is not parked)."""
        return self._task is not None and self._waiter is None

    def _enqueue(self, request: _Request) -> None:
        self._queue.append(request)
        self._cancel_timer()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._answer_all())
        elif self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.set_result(None)

    async def _answer_all(self) -> None:
        transport = self._transport
        assert transport is not None
        while True:
            while self._queue:
                request = self._queue.popleft()
                status, body = await self._answer(request)
                if transport.is_closing():
                    return
                # Closing (shutdown, the client's EOF): the last answer owed here says so.
                keep = request.keep_alive and not (self._closing and not self._queue and self._handover is None)
                transport.write(b"%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n%s"
                                % (_status_line(status), len(body), b"keep-alive" if keep else b"close", body))
                if not keep:
                    self._close_after_answer(transport)
                    return
            if self._handover is not None or self._closing:
                self._task = None
                if self._handover is not None:
                    self._maybe_hand_over()
                else:
                    transport.close()
                return
            self._arm_timer()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter  # until `_enqueue`; cancelled when the connection goes

    def _close_after_answer(self, transport: asyncio.Transport) -> None:
        """Close; after a refusal that left input unread, first half-close and drop what still comes.

        A client still writing the body of a request refused by its head (too large, chunked) would
        otherwise get a broken pipe or a reset, and could lose the answer already sent (nginx's
        lingering close). The client's EOF, LINGER seconds or LINGER_BYTES end it.
        """
        if not self._stopped or self._closing or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, transport.close)

    def _stop_answering(self) -> None:
        """Cancel the answering task if it is parked (one that is answering finishes its answer)."""
        if self._task is not None and self._waiter is not None:
            self._task.cancel()
            self._task = self._waiter = None

    async def _answer(self, request: _Request) -> tuple[int, bytes]:
        try:
            if request.agent is None or (request.refused is not None and not isinstance(request.refused, RefusedBody)):
                raise request.refused or ApiError(400, "bad_request", "malformed HTTP request")
            agent = request.agent
            events = agent == ""
            source = ingest_routes.EVENTS_SOURCE if events else ingest_routes.hook_source(agent)

            async def read() -> object:
                if request.refused is not None:
                    raise request.refused
                return parse_json(bytes(request.body))

            body = await ingest_routes.json_body(self._ctx, source, read)
            if events:
                return 202, orjson.dumps(await ingest_routes.accept_events(self._ctx, body))
            return 202, orjson.dumps(await ingest_routes.accept_hook(self._ctx, agent, body))
        except Exception as exc:
            status, code, message = failure(exc, "POST", "/v1/events" if request.agent == "" else "/v1/hooks")
            return status, error_body(code, message)

    # --- handing over to aiohttp ---

    def _maybe_hand_over(self) -> None:
        if self._answering or self._queue:
            # Earlier ingest answers first; stop reading meanwhile (what arrives is kept for aiohttp).
            if self._transport is not None:
                self._transport.pause_reading()
            return
        assert self._handover is not None
        self._hand_over(bytes(self._handover))

    def _hand_over(self, replay: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._drop_timer()
        self._stop_answering()
        self._server.connections.discard(self)
        self._inner = self._make_inner()
        self._handover = None
        self._inner.connection_made(transport)
        if replay:
            self._inner.data_received(replay)
        with contextlib.suppress(RuntimeError):  # not paused
            transport.resume_reading()

    # --- idle and partial requests (aod/api/connections.py) ---

    def _arm_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(HEADER_TIMEOUT, self._timed_out)

    def _cancel_timer(self) -> None:
        self._idle_since = None  # the pending timer, if any, finds this and goes

    def _drop_timer(self) -> None:
        self._idle_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._idle_since is None:
            return  # busy since: armed again once idle
        left = self._idle_since + HEADER_TIMEOUT - asyncio.get_running_loop().time()
        if left > 0:  # a request came and went meanwhile: wait out the rest of its idle time
            self._timer = asyncio.get_running_loop().call_later(left, self._timed_out)
            return
        # As aiohttp's keep-alive timer: only a connection with no complete request is closed.
        if not self._answering and not self._queue and self._transport is not None:
            self._transport.close()

    def close_when_idle(self) -> None:
        self._closing = True
        if not self._answering and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
