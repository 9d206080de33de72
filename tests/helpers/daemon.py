"""A real `aod serve` subprocess on a temporary data dir, and a plain client for its socket."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import aod_command


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def request(
    address: Path | str, method: str, path: str, body: bytes | str | object | None = None,
    headers: dict[str, str | bytes] | None = None, timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection: to a Unix socket (a Path) or to TCP ("host:port")."""
    if isinstance(address, Path):
        conn: http.client.HTTPConnection = UnixHTTPConnection(str(address), timeout)
    else:
        host, _, port = address.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = body if isinstance(body, bytes | None) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        hdrs: dict[str, str | bytes] = {"Content-Type": "application/json"} if payload is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


class SocketClient:
    """What a test asks the API over `self.socket` (a real daemon, or tests/helpers/inproc.py's)."""

    data_dir: Path
    socket: Path
    env: dict[str, str]  # what an `aod` command run against it needs

    def get(self, path: str, **kw: Any) -> Reply:
        return request(self.socket, "GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return request(self.socket, "POST", path, body, **kw)

    def session(self, session_id: str) -> dict[str, Any]:
        """GET /v1/sessions/{id}, which must answer 200."""
        reply = self.get(f"/v1/sessions/{session_id}")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/v1/status").body
        return body


class Daemon(SocketClient):
    def __init__(self, data_dir: Path, env: dict[str, str], config_text: str = "") -> None:
        self.data_dir = data_dir
        self.socket = data_dir / "aod.sock"
        self.config = data_dir.parent / f"{data_dir.name}-config.toml"
        self.config.write_text('[server]\ntcp = "127.0.0.1:0"\n' + config_text)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
        self.env.update(env)
        self.env.update({"AOD_DATA_DIR": str(data_dir), "AOD_CONFIG": str(self.config), "AOD_SOCKET": str(self.socket)})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-daemon.log"

    def start(self, wait: bool = True, args: tuple[str, ...] = ()) -> Daemon:
        """`args` go after `aod serve` (e.g. `("--tcp", "")`)."""
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([*aod_command(), "serve", *args], env=self.env, stdout=self._log_file,
                                     stderr=self._log_file)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"aod serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if request(self.socket, "GET", "/readyz", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"aod serve not ready after {timeout}s:\n{self.log.read_text()}")

    def tcp(self, method: str, path: str, body: Any = None, headers: dict[str, str | bytes] | None = None) -> Reply:
        """A request over the daemon's loopback TCP port (there the token rules apply)."""
        return request(self.status()["tcp"], method, path, body, headers)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._log_file.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)
