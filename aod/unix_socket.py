"""The daemon's Unix socket: bound only where nothing else is, removed only while it is still ours.

`bind_unix_socket` never deletes anything but a stale socket of the daemon's own uid (one that nobody answers
on: a crashed aod's leftover). A live socket, a regular file, a symlink or a directory at the path
is refused, and so is a socket whose state cannot be told (a connect that times out or is denied).
The socket is bound by aod itself, not by asyncio, because asyncio's `create_unix_server` silently
removes any socket in its way, a live one included.

`BoundSocket.release` unlinks the path only while it still names the inode this process bound:
if someone replaced it meanwhile (another daemon after a stale check, a user's `mv`), theirs stays.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aod.ownership import Action, Refused, Verdict, kind_text, prepare_socket_dir, stat_or_none

log = logging.getLogger("aod.unix_socket")

PROBE_TIMEOUT = 0.5
# aiohttp's default; it calls listen() again with its own backlog when it starts serving.
BACKLOG = 128
BIND_ATTEMPTS = 3


@dataclass(frozen=True)
class Probe:
    """What a connect to an existing socket said."""

    answers: bool
    pid: int | None = None  # the peer, where the platform tells (SO_PEERCRED)
    error: str | None = None  # neither answered nor refused: nobody can tell whether it is in use


def judge_socket_entry(path: str, st: os.stat_result | None, uid: int, probe: Callable[[], Probe]) -> Verdict:
    """What to do with what is at the socket path (an lstat); `probe` runs only for a socket."""
    if st is None:
        return Verdict(Action.CREATE)
    if not stat.S_ISSOCK(st.st_mode):
        return Verdict(Action.REFUSE, f"refusing socket {path}: {kind_text(st)} is in its place, and aod deletes"
                                      " nothing it did not make; move it away or choose another --socket")
    result = probe()
    if result.answers:
        who = "another process" + (f" (pid {result.pid})" if result.pid else "")
        return Verdict(Action.REFUSE, f"refusing socket {path}: {who} is serving on it; stop it, or give this"
                                      " daemon another --socket")
    if result.error is not None:
        return Verdict(Action.REFUSE, f"refusing socket {path}: cannot tell whether another process uses it"
                                      f" ({result.error}); remove it yourself if it is not in use")
    if st.st_uid != uid:
        return Verdict(Action.REFUSE, f"refusing socket {path}: a stale socket of uid {st.st_uid} is there, and"
                                      " aod replaces only its own; remove it yourself if it is not in use")
    return Verdict(Action.REPLACE)


def probe(path: str, timeout: float = PROBE_TIMEOUT) -> Probe:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            # Refused: a socket file with no listener, which only a dead process leaves behind.
            return Probe(answers=False)
        except TimeoutError:
            # A full backlog or a hung server is still a live one.
            return Probe(answers=False, error=f"no answer within {timeout:g} s")
        except OSError as exc:
            return Probe(answers=False, error=exc.strerror or str(exc))
        return Probe(answers=True, pid=_peer_pid(conn))


def _peer_pid(conn: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError:
        return None
    return pid or None


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    # The inode number alone is not enough: a file system reuses a freed one at once. A new file
    # under a reused number has a new ctime; one of ours whose ctime changed (a rename, a chmod) is
    # taken for someone else's, which errs on the side of leaving it (the next start replaces it).
    return st.st_dev, st.st_ino, st.st_ctime_ns


@dataclass(frozen=True)
class BoundSocket:
    """The socket file this process bound, by identity: a path alone may name someone else's by now."""

    path: str
    identity: tuple[int, int, int]  # (st_dev, st_ino, st_ctime_ns) right after the bind

    def is_ours(self, st: os.stat_result | None) -> bool:
        return st is not None and _identity(st) == self.identity

    def release(self) -> None:
        """Unlink the socket if the path still names the one this process bound."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not self.is_ours(st):
            log.warning(f"{self.path} is no longer this daemon's socket ({kind_text(st)} replaced it); left it there",
                        extra={"socket": self.path})
            return
        # Between that lstat and this unlink, only a process that may write this directory (ours,
        # not writable by group or others) could swap the file: the daemon's own user.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # e.g. the file system went read-only: shutdown must go on
            log.warning(f"cannot remove {self.path}: {exc.strerror or exc}", extra={"socket": self.path})


def bind_unix_socket(path: Path) -> tuple[socket.socket, BoundSocket]:
    """A listening socket at `path`, 0600, in a checked directory; a stale one of ours is replaced."""
    real = os.path.join(prepare_socket_dir(path), path.name)
    uid = os.geteuid()
    # A few tries: as things are, then after a stale socket went. Needing more means another
    # process keeps binding the path: a live contender, not a leftover.
    for attempt in range(BIND_ATTEMPTS):
        bound = _try_bind(real, path)
        if bound is not None:
            return bound
        if attempt == BIND_ATTEMPTS - 1:
            break
        st = stat_or_none(real, follow=False)
        verdict = judge_socket_entry(str(path), st, uid, lambda: probe(real))
        if verdict.action is Action.REFUSE:
            raise Refused(verdict.reason)
        if verdict.action is Action.REPLACE and _unlink_if_same(real, st):
            log.info("replaced a stale socket (nothing answered on it)", extra={"socket": real})
    raise Refused(f"refusing socket {path}: another process keeps creating it; stop it, or choose another --socket")


def _try_bind(real: str, shown: Path) -> tuple[socket.socket, BoundSocket] | None:
    """Bind and listen at once; None when something is at the path already."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # The umask makes the socket 0600 from the moment it exists, not after a chmod.
        old = os.umask(0o177)
        try:
            sock.bind(real)
        finally:
            os.umask(old)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise Refused(f"cannot create socket {shown}: {exc.strerror or exc}") from None
    try:
        st = os.lstat(real)
    except OSError as exc:
        sock.close()
        raise Refused(f"socket {shown} vanished right after aod bound it: {exc.strerror or exc}") from None
    bound = BoundSocket(real, _identity(st))
    try:
        # Listening before anything else happens: a concurrent start that probes this path must
        # find it answering, not take it for a stale leftover and remove it.
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        bound.release()
        raise
    return sock, bound


def _unlink_if_same(path: str, probed: os.stat_result | None) -> bool:
    # The path must still name the socket that was probed: one bound since then is not stale.
    now = stat_or_none(path, follow=False)
    if probed is None or now is None or _identity(now) != _identity(probed):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True


def check_socket_path(path: Path) -> None:
    """Refuse now what `bind_unix_socket` would refuse later, before the daemon opens its database.

    A stale socket is left for the bind to replace; a path that changes in between is judged again there.
    """
    real = os.path.join(prepare_socket_dir(path), path.name)
    verdict = judge_socket_entry(str(path), stat_or_none(real, follow=False), os.geteuid(), lambda: probe(real))
    if verdict.action is Action.REFUSE:
        raise Refused(verdict.reason)
