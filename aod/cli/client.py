"""A tiny JSON-over-HTTP client for the daemon's Unix socket.

Stdlib only: every `aod status`/`aod sessions` pays this module's import cost, and aiohttp alone
would cost more than the whole round trip to the daemon.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

__all__ = ["DaemonClient", "DaemonError", "DaemonUnavailable", "EventStreamParser", "ServerEvent"]

# The daemon refuses requests whose Host is not a loopback name (DNS rebinding guard), so the
# Unix-socket client names one even though no TCP is involved.
_HOST = "localhost"


class DaemonUnavailable(Exception):
    """Nobody answered on the socket: missing, refused, or silent past the timeout."""

    def __init__(self, socket_path: Path, reason: str) -> None:
        self.socket_path = socket_path
        self.reason = reason
        super().__init__(f"no daemon is answering on {socket_path}: {reason}")


class DaemonError(Exception):
    """The daemon answered with a 4xx/5xx and its `{"error": {"code", "message"}}` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__(_HOST, timeout=timeout)
        self._socket_path = socket_path
        # `sock` is not enough: on a `Connection: close` response (every stream) getresponse()
        # hands the socket to the response and sets `sock` to None.
        self.opened: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self._socket_path))
        except BaseException:
            sock.close()
            raise
        self.sock = self.opened = sock


def _query(path: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return path
    # None means "no filter": sending `status=` would ask for sessions whose status is empty.
    pairs = [(k, _param(v)) for k, v in params.items() if v is not None]
    if not pairs:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(pairs)}"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _error_from(status: int, raw: bytes) -> DaemonError:
    # A proxy or a half-started daemon may answer with plain text; keep its words anyway.
    try:
        err = json.loads(raw)["error"]
        return DaemonError(status, str(err.get("code", "error")), str(err.get("message", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()
        return DaemonError(status, "http_error", text or http.client.responses.get(status, "error"))


class DaemonClient:
    """One request per connection: the CLI makes a handful of calls, so keep-alive buys nothing."""

    def __init__(self, socket_path: Path, timeout: float = 5.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        return self._request("GET", _query(path, params), None)

    def post_json(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        return self._request("POST", path, json.dumps(body).encode())

    def stream(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Open an SSE stream and return an iterator of its lines (without line endings).

        Connecting and the response headers are bounded by the timeout, so a dead daemon is
        reported at once (this call raises, not the first `next()`); after that the stream may
        rightly stay quiet for a long time, so reads block without a limit. No read timeout:
        on a Unix socket a daemon that exits or dies closes the stream (EOF), and one that
        hangs would hang a reconnect as well.
        """
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", _query(path, params), headers={"Accept": "text/event-stream", **(headers or {})})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._unavailable(exc) from None
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise _error_from(resp.status, raw)
        if conn.opened is not None:
            conn.opened.settimeout(None)
        return self._lines(conn, resp)

    @staticmethod
    def _lines(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> Iterator[str]:
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                yield line.decode("utf-8", "replace").rstrip("\r\n")
        finally:
            # Runs on exhaustion and on generator close (Ctrl-C, `break`), so no socket leaks:
            # the response holds the socket (Connection: close), so it is closed too.
            resp.close()
            conn.close()

    def _request(self, method: str, target: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unavailable(exc) from None
        finally:
            conn.close()
        if resp.status >= 400:
            raise _error_from(resp.status, raw)
        if not raw:
            return resp.status, {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise DaemonError(resp.status, "bad_response", "the daemon answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise DaemonError(resp.status, "bad_response", "the daemon answered with a non-object JSON body")
        return resp.status, data

    def _unavailable(self, exc: BaseException) -> DaemonUnavailable:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout:g}s"
        elif isinstance(exc, FileNotFoundError):
            reason = "the socket does not exist"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = str(exc) or type(exc).__name__
        return DaemonUnavailable(self.socket_path, reason)


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None  # the stream's last event id once this event was dispatched


class EventStreamParser:
    """The server-sent events line format (WHATWG HTML, "Interpreting an event stream").

    An id counts only once its event is complete (the blank line): a connection that drops in
    the middle of a frame must resume from the previous id, or that frame would be lost.
    """

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_ms: int | None = None
        self._id = last_id
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerEvent | None:
        if line == "":
            self.last_id = self._id
            if not self._data:
                self._event = ""
                return None
            event = ServerEvent(self._event or "message", "\n".join(self._data), self.last_id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None
