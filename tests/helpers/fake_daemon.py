"""A stand-in for the daemon: a stdlib HTTP/1.1 server on a Unix socket that records each request
and answers exactly as the test's routes say (for the clients: the CLI's and the hook's).

A route returns one of:
- `(status, body)` or `(status, body, content_type)`: a JSON body unless the body is a str; a
  `text/event-stream` body is sent without a length and the connection closed after it;
- `bytes`: written verbatim instead of an HTTP response, then the connection is closed;
- `None`: no answer at all until the test ends (`release`).
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, Any] | tuple[int, Any, str] | bytes | None
Route = Callable[[Seen], Reply]


def answer(status: int, body: Any = None) -> Route:
    """A route that always gives `status` (with `body`, or the daemon's 202 acknowledgement)."""
    reply = body if body is not None else {"accepted": 1}
    return lambda seen: (status, reply)


def silent(seen: Seen) -> Reply:
    """A route that reads the request and never answers."""
    return None


class FakeDaemon:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()  # set when the test ends: a silent route lets go
        self._server = _Server(str(socket_path), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def reply_to(self, seen: Seen) -> Reply:
        self.seen.append(seen)
        route = self.routes.get(seen.path)
        if route is None:
            return 404, {"error": {"code": "not_found", "message": f"no route {seen.path}"}}
        return route(seen)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler_for(daemon: FakeDaemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the default touches client_address, which is empty on a Unix socket

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            reply = daemon.reply_to(
                Seen(self.command, url.path, parse_qs(url.query), dict(self.headers), self.rfile.read(length)))
            if reply is None:
                daemon.release.wait(10)
                self.close_connection = True
                return
            if isinstance(reply, bytes):
                self.wfile.write(reply)
                self.close_connection = True
                return
            status, body, *rest = reply
            ctype = rest[0] if rest else ""
            if ctype == "text/event-stream":
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body.encode())
                self.close_connection = True
                return
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _serve
        do_POST = _serve

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
