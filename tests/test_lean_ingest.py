"""The ingest routes on their own HTTP/1.1 protocol (aod/api/lean.py), against a real daemon over
raw sockets: keep-alive, pipelining, hand-over to aiohttp, chunked bodies, 100-continue, limits,
auth over TCP, the header timeout."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from aod.api.connections import HEADER_TIMEOUT
from aod.api.lean import ingest_route
from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.rawhttp import auth_header, connect, wait_closed

HOST = b"Host: localhost\r\n"
JSON = b"Content-Type: application/json\r\n"
LIMIT = 4096


def _envelope(tool_use_id: str) -> bytes:
    payload = hook_payload("PreToolUse")
    return json.dumps({"agent": "claude-code", "payload": payload | {"tool_use_id": tool_use_id}}).encode()


def _post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\n" + HOST + JSON + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _chunked(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:300], body[300:]) if part)
    return (b"POST " + path + b" HTTP/1.1\r\n" + HOST + JSON + extra + b"Transfer-Encoding: chunked\r\n\r\n"
            + chunks + b"0\r\n\r\n")


def _get(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\n" + HOST + extra + b"\r\n"


class Responses:
    """HTTP/1.1 responses read one after another from one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def next(self) -> tuple[int, dict[str, str], Any]:
        status = int(self.file.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.file.readline().strip(), 16):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
        else:
            body = self.file.read(int(headers.get("content-length", "0")))
        return status, headers, json.loads(body) if body else None


@pytest.fixture
def small(data_dir: Path, aod_env: dict[str, str]) -> Any:
    d = Daemon(data_dir, aod_env, f"[ingest]\nmax_body_bytes = {LIMIT}\n").start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.kill()


def test_only_plain_ingest_posts_take_the_lean_path() -> None:
    assert ingest_route(b"POST", b"/v1/events") == ""
    assert ingest_route(b"POST", b"/v1/events?x=1") == ""
    assert ingest_route(b"POST", b"/v1/hooks/claude-code") == "claude-code"
    for method, url in [(b"GET", b"/v1/events"), (b"POST", b"/v1/hooks/"), (b"POST", b"/v1/hooks/a/b"),
                        (b"POST", b"/v1/hooks/claude%2Dcode"), (b"POST", b"http://localhost/v1/events"),
                        (b"POST", b"/v1/eventsx"), (b"PUT", b"/v1/events")]:
        assert ingest_route(method, url) is None, (method, url)


def test_keep_alive_mixes_pipelining_and_chunked_bodies_on_one_connection(small: Daemon) -> None:
    hook = hook_payload("PreToolUse") | {"tool_use_id": "toolu_hook"}
    with connect(small, "unix") as sock:
        replies = Responses(sock)
        # Two ingest requests kept alive, one with a chunked body, then a GET on the same connection.
        sock.sendall(_post(b"/v1/events", _envelope("toolu_1")))
        assert replies.next()[0] == 202
        sock.sendall(_chunked(b"/v1/hooks/claude-code", json.dumps(hook).encode()))
        status, headers, body = replies.next()
        assert (status, body["accepted"], headers["connection"]) == (202, 1, "keep-alive")
        sock.sendall(_get(b"/v1/events?limit=10"))
        status, _, body = replies.next()
        assert status == 200
        assert sorted(e["tool_use_id"] for e in body["items"]) == ["toolu_1", "toolu_hook"]
        # Now aiohttp's connection: ingest still works on it.
        sock.sendall(_post(b"/v1/events", _envelope("toolu_2")))
        assert replies.next()[2]["accepted"] == 1

    with connect(small, "unix") as sock:
        replies = Responses(sock)
        # Pipelined in one write: two ingests, a GET that must see both, an ingest aiohttp answers.
        sock.sendall(_post(b"/v1/events", _envelope("toolu_3")) + _chunked(b"/v1/events", _envelope("toolu_4"))
                     + _get(b"/v1/events?limit=100") + _post(b"/v1/events", _envelope("toolu_5")))
        assert [replies.next()[2]["accepted"] for _ in range(2)] == [1, 1]
        status, _, body = replies.next()
        assert status == 200 and {"toolu_3", "toolu_4"} <= {e["tool_use_id"] for e in body["items"]}
        assert replies.next()[0] == 202
    assert small.get("/v1/status").body["counts"]["events"] == 6  # toolu_1 to _5 and the hook


def test_continue_limits_and_refused_bodies(small: Daemon) -> None:
    with connect(small, "unix") as sock:
        replies = Responses(sock)
        body = _envelope("toolu_c")
        sock.sendall(b"POST /v1/events HTTP/1.1\r\n" + HOST + JSON + b"Expect: 100-continue\r\n"
                     + b"Content-Length: %d\r\n\r\n" % len(body))
        assert replies.file.readline() == b"HTTP/1.1 100 Continue\r\n" and replies.file.readline() == b"\r\n"
        sock.sendall(body)
        assert replies.next()[2]["accepted"] == 1
        # Declared too large: answered at once, no 100, the body never read, the connection closed.
        sock.sendall(b"POST /v1/events HTTP/1.1\r\n" + HOST + JSON + b"Expect: 100-continue\r\n"
                     + b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
        status, headers, error = replies.next()
        assert (status, error["error"]["code"], headers["connection"]) == (413, "body_too_large", "close")
        assert replies.file.read() == b""
    with connect(small, "unix") as sock:  # chunked: the size is found while reading
        sock.sendall(_chunked(b"/v1/events", b"[" + b"1," * LIMIT + b"1]"))
        assert Responses(sock).next()[:1] == (413,)
    with connect(small, "unix") as sock:
        replies = Responses(sock)
        sock.sendall(_post(b"/v1/events", b"{nope") + _post(b"/v1/hooks/x", b"[]", extra=b"")
                     .replace(JSON, b"Content-Type: text/plain\r\n"))
        assert replies.next()[2]["error"]["code"] == "invalid_json"
        assert replies.next()[:1] == (415,)
    with connect(small, "unix") as sock:  # half-closed after two pipelined requests: both still answered
        sock.sendall(_post(b"/v1/events", _envelope("toolu_h1")) + _post(b"/v1/events", b"[]"))
        sock.shutdown(socket.SHUT_WR)
        replies = Responses(sock)
        assert replies.next()[2]["accepted"] == 1
        status, headers, _ = replies.next()
        assert (status, headers["connection"]) == (400, "close")
        assert replies.file.read() == b""
    # Each refused body is a dead letter and a rejected count, as on aiohttp's routes.
    metrics = small.get("/metrics").body
    metrics = metrics if isinstance(metrics, str) else metrics.decode()
    for reason in ("body_too_large", "invalid_json", "unsupported_media_type"):
        assert f'aod_ingest_rejected_by_reason_total{{reason="{reason}"}}' in metrics, reason
    assert small.get("/v1/status").body["counts"] | {"projects": 0, "sessions": 0} == {
        "projects": 0, "sessions": 0, "events": 2, "dead_letters": 5}


def test_a_refused_body_of_declared_size_is_read_and_the_connection_kept(daemon: Daemon) -> None:
    # Closing with the body unread reset the connection: a client still sending it lost the answer.
    body = _envelope("toolu_r") * 8
    refused = _post(b"/v1/events", body).replace(JSON, b"Content-Type: text/plain\r\n")
    with connect(daemon, "unix") as sock:
        replies = Responses(sock)
        sock.sendall(refused + _post(b"/v1/events", _envelope("toolu_r2")))
        status, headers, error = replies.next()
        assert (status, error["error"]["code"], headers["connection"]) == (415, "unsupported_media_type", "keep-alive")
        assert replies.next()[2]["accepted"] == 1  # the same connection goes on
    with connect(daemon, "tcp") as sock:  # refused by the head (no token): the body is read all the same
        replies = Responses(sock)
        sock.sendall(_post(b"/v1/events", body) + _post(b"/v1/events", _envelope("toolu_r3"), auth_header(daemon)))
        status, headers, error = replies.next()
        assert (status, error["error"]["code"], headers["connection"]) == (401, "unauthorized", "keep-alive")
        assert replies.next()[2]["accepted"] == 1
    assert daemon.get("/v1/status").body["counts"]["events"] == 2


def test_a_client_sending_a_body_over_the_limit_whole_reads_its_413(small: Daemon) -> None:
    # More than the socket buffers hold: before the lingering close its sendall broke (EPIPE).
    big = b"[" + b"1," * 1_000_000 + b"1]"
    with connect(small, "unix") as sock:
        sock.sendall(_post(b"/v1/events", big))
        status, headers, error = Responses(sock).next()
        assert (status, error["error"]["code"], headers["connection"]) == (413, "body_too_large", "close")


def test_tcp_needs_the_token_a_loopback_host_and_our_origin(daemon: Daemon) -> None:
    auth = auth_header(daemon)
    cases = [(b"", 401, "unauthorized"), (auth + b"Origin: http://evil.example\r\n", 403, "forbidden_origin"),
             (b"Authorization: Bearer wrong\r\n", 401, "unauthorized")]
    for extra, status, code in cases:
        with connect(daemon, "tcp") as sock:
            sock.sendall(_post(b"/v1/events", _envelope("toolu_t"), extra))
            got, _, body = Responses(sock).next()
            assert (got, body["error"]["code"]) == (status, code), extra
    with connect(daemon, "tcp") as sock:
        sock.sendall(_post(b"/v1/events", _envelope("toolu_t"), auth).replace(HOST, b"Host: rebound.example\r\n"))
        assert Responses(sock).next()[2]["error"]["code"] == "forbidden_host"
    with connect(daemon, "tcp") as sock:
        replies = Responses(sock)
        sock.sendall(_post(b"/v1/events", _envelope("toolu_t"), auth) + _get(b"/v1/status", auth))
        assert replies.next()[2]["accepted"] == 1
        assert replies.next()[2]["counts"]["events"] == 1
    with connect(daemon, "unix") as sock:  # an idle kept-alive lean connection does not hold up SIGTERM
        sock.sendall(_post(b"/v1/events", _envelope("toolu_u")))
        assert Responses(sock).next()[0] == 202
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 3
        assert sock.recv(1) == b""


def test_a_slow_head_is_closed_after_the_header_timeout(daemon: Daemon) -> None:
    with connect(daemon, "unix") as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHo")
        started = time.monotonic()
        closed = wait_closed(sock, HEADER_TIMEOUT + 3)
        assert closed is not None and time.monotonic() - started >= HEADER_TIMEOUT - 0.5
    assert daemon.get("/healthz").status == 200


def test_a_kept_alive_connection_closes_a_header_timeout_after_its_last_answer(daemon: Daemon) -> None:
    # The idle timer is armed once and looked at lazily: a request in between moves the close
    # to a whole timeout after that request's answer, not the first answer's.
    with connect(daemon, "unix") as sock:
        replies = Responses(sock)
        sock.sendall(_post(b"/v1/events", _envelope("toolu_k1")))
        assert replies.next()[0] == 202
        first = time.monotonic()
        time.sleep(HEADER_TIMEOUT / 2)
        sock.sendall(_post(b"/v1/events", _envelope("toolu_k2")))
        assert replies.next()[0] == 202
        last = time.monotonic()
        closed = wait_closed(sock, HEADER_TIMEOUT + 3)
        assert closed is not None and HEADER_TIMEOUT - 0.5 <= closed <= HEADER_TIMEOUT + 1.5, closed
        assert last + closed - first > HEADER_TIMEOUT + 2


def test_a_connection_idle_after_its_answers_is_handed_to_aiohttp_by_its_next_request(daemon: Daemon) -> None:
    with connect(daemon, "unix") as sock:
        replies = Responses(sock)
        sock.sendall(_post(b"/v1/events", _envelope("toolu_p1")))
        assert replies.next()[0] == 202
        time.sleep(0.2)  # answered: nothing is owed on this connection now
        sock.sendall(_get(b"/healthz"))
        assert replies.next()[0] == 200
        sock.sendall(_post(b"/v1/events", _envelope("toolu_p2")))  # aiohttp's route from here on
        assert replies.next()[2]["accepted"] == 1
    assert daemon.get("/v1/status").body["counts"]["events"] == 2
