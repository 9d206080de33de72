"""Raw sockets to a real daemon: for bytes no HTTP client would send, and for watching a
connection being closed by the other side."""

from __future__ import annotations

import select
import socket
import struct
import time

from tests.helpers.daemon import Daemon


def tcp_address(daemon: Daemon) -> tuple[str, int]:
    host, _, port = daemon.status()["tcp"].rpartition(":")
    return host, int(port)


def auth_header(daemon: Daemon) -> bytes:
    return b"Authorization: Bearer " + (daemon.data_dir / "token").read_text().strip().encode() + b"\r\n"


def connect(daemon: Daemon, transport: str) -> socket.socket:
    if transport == "tcp":
        sock = socket.create_connection(tcp_address(daemon), timeout=5)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(daemon.socket))
    return sock


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0), as a crashed or impatient client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def peer_closed(sock: socket.socket) -> bool:
    """Whether the daemon has closed this connection (reads and drops what it sent before that)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(65536, socket.MSG_DONTWAIT):
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True
    return False


def wait_closed(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the daemon closed the connection, or None if it still had not after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if peer_closed(sock):
            return time.monotonic() - start
        select.select([sock], [], [], 0.05)
    return None
