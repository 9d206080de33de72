"""Listening sockets handed over by a service manager (systemd's socket activation), stdlib only.

The sd_listen_fds protocol: the manager passes the sockets as fds 3, 4, … and sets LISTEN_FDS (how
many) and LISTEN_PID (the process meant: a variable inherited by someone else's child is not an
offer). The variables are removed at once, so no process aod starts (tmux, gh, a notifier) takes
the sockets for its own. While aod restarts, the manager keeps the sockets open: a hook that
connects then waits in the kernel's queue instead of spooling.

aod listens on one Unix socket and at most one TCP address, so a socket's address family says
which is which; LISTEN_FDNAMES is not needed to tell them apart (a unit may name them anything).
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass

__all__ = ["FIRST_FD", "Inherited", "InheritedError", "take_inherited_sockets"]

FIRST_FD = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class InheritedError(RuntimeError):
    """The manager passed sockets aod cannot serve on; worded for the user."""


@dataclass(frozen=True)
class Inherited:
    unix: socket.socket | None = None
    tcp: socket.socket | None = None

    def close(self) -> None:
        for sock in (self.unix, self.tcp):
            if sock is not None:
                sock.close()


def take_inherited_sockets(env: MutableMapping[str, str] = os.environ) -> Inherited:
    """The sockets passed to this process (none without LISTEN_FDS), with the variables removed."""
    values = {name: env.pop(name, None) for name in _VARIABLES}
    pid, count = values["LISTEN_PID"], values["LISTEN_FDS"]
    if pid is None or count is None or not pid.isdigit() or int(pid) != os.getpid():
        return Inherited()
    if not count.isdigit():
        raise InheritedError(f"LISTEN_FDS={count!r} is not a number of sockets")
    found: dict[str, socket.socket] = {}
    try:
        for fd in range(FIRST_FD, FIRST_FD + int(count)):
            sock = _listening_socket(fd)
            kind = "unix" if sock.family == socket.AF_UNIX else "tcp"
            if kind in found:
                sock.close()
                raise InheritedError(f"two {kind} sockets were passed (fd {fd}); aod listens on one of each")
            found[kind] = sock
    except BaseException:
        Inherited(**found).close()
        raise
    return Inherited(**found)


def _listening_socket(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise InheritedError(f"fd {fd} of LISTEN_FDS is not a socket: {exc.strerror or exc}") from None
    # The manager clears close-on-exec so the fd survives its exec; aod's own children must not get it.
    sock.set_inheritable(False)
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
        sock.close()
        raise InheritedError(f"fd {fd} of LISTEN_FDS is not a stream socket of a Unix or TCP address"
                             " (use ListenStream= in the socket unit)")
    return sock
