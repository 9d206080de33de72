"""What the daemon may change on disk: only what is its own.

The rules, each a pure `judge_*` function of an `os.stat_result` (testable without a file system)
and a small helper that stats, creates or tightens accordingly:

- A directory aod creates is made 0700; a directory it did not create is never chmodded, except
  the data dir and `spool/`, which are aod's by definition once they are owned by its uid.
- The data dir (and `spool/` in it) must belong to the daemon's uid; group/other access is taken
  away (with a warning in the log). One owned by another uid is refused, and so is one anybody
  may write to (sticky or o+w, like /tmp): that is a shared directory, and chmodding it would
  break everyone else who uses it.
- The files aod keeps in the data dir (database, WAL, shared memory, token, lock) lose group/other
  access the same way; one owned by another uid is refused. Symlinks are left as they are.
- The socket's directory must belong to the daemon's uid and must not be writable by group or
  others: anyone who can write there could replace the socket with their own and receive the
  hooks' events. It is refused otherwise, never chmodded.

A symlink as the data dir or as the socket's directory is allowed: the real directory it names is
what is checked, and what the daemon uses from then on (a later swap of the link changes nothing).

The daemon's own umask is left alone: tmux (and the agents in it), git and notifier commands
inherit it, and a 077 umask would make every file an agent writes in the user's project 0600.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from aod.config import DB_FILENAME
from aod.storage.lock import LOCK_NAME

log = logging.getLogger("aod.ownership")

# aod.api.security.TOKEN_FILE; not imported, to keep aiohttp out of this module.
_TOKEN_FILE = "token"
PRIVATE_FILES = (DB_FILENAME, f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm", f"{DB_FILENAME}-journal",
                 _TOKEN_FILE, LOCK_NAME)
PRIVATE_DIRS = ("spool",)
_GROUP_OTHER = 0o077
_WRITABLE_BY_OTHERS = 0o022
_SHARED = stat.S_ISVTX | 0o002


class Refused(RuntimeError):
    """A path the daemon will not use or change, worded for the user."""


class Action(enum.Enum):
    CREATE = "create"  # nothing there: make it
    USE = "use"  # as it is
    TIGHTEN = "tighten"  # ours, but group/other have access: take it away
    REPLACE = "replace"  # a stale socket of ours (aod.unix_socket)
    REFUSE = "refuse"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""  # why, for REFUSE; worded for the user


def mode_text(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def kind_text(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


# --- the rules, pure ----------------------------------------------------------------------------


def judge_private_dir(what: str, path: str, st: os.stat_result | None, uid: int) -> Verdict:
    """The data dir or spool/: aod's own, so it may be created or tightened, but only if it is ours."""
    if st is None:
        return Verdict(Action.CREATE)
    if not stat.S_ISDIR(st.st_mode):
        return Verdict(Action.REFUSE, f"{what} {path} is {kind_text(st)}, not a directory")
    if st.st_uid != uid:
        return Verdict(Action.REFUSE, f"{what} {path} belongs to uid {st.st_uid}, not to this daemon's uid {uid};"
                                      " run aod as its owner or choose another --data-dir")
    if st.st_mode & _SHARED:
        return Verdict(Action.REFUSE, f"{what} {path} is writable by anyone (mode {mode_text(st)}), a shared"
                                      " directory; choose a directory of your own (--data-dir or AOD_DATA_DIR)")
    if st.st_mode & _GROUP_OTHER:
        return Verdict(Action.TIGHTEN)
    return Verdict(Action.USE)


def judge_private_file(path: str, st: os.stat_result | None, uid: int) -> Verdict:
    """A file aod keeps in its data dir (lstat). Symlinks and the like are the user's own doing: left alone."""
    if st is None or not stat.S_ISREG(st.st_mode):
        return Verdict(Action.USE)
    if st.st_uid != uid:
        return Verdict(Action.REFUSE, f"{path} belongs to uid {st.st_uid}, not to this daemon's uid {uid}"
                                      " (was aod run as another user on this data dir?); chown it back")
    if st.st_mode & _GROUP_OTHER:
        return Verdict(Action.TIGHTEN)
    return Verdict(Action.USE)


def judge_socket_dir(socket_path: str, real_dir: str, st: os.stat_result | None, uid: int) -> Verdict:
    """The socket's directory: created if missing, else used as it is, or refused; never chmodded."""
    if st is None:
        return Verdict(Action.CREATE)
    where = f"refusing socket {socket_path}: its directory {real_dir}"
    if not stat.S_ISDIR(st.st_mode):
        return Verdict(Action.REFUSE, f"{where} is {kind_text(st)}, not a directory")
    if st.st_uid != uid:
        return Verdict(Action.REFUSE, f"{where} belongs to uid {st.st_uid}, not to this daemon's uid {uid};"
                                      " put the socket in a directory of your own (--socket or AOD_SOCKET)")
    if st.st_mode & _WRITABLE_BY_OTHERS:
        return Verdict(Action.REFUSE, f"{where} is writable by group or others (mode {mode_text(st)}), so anyone"
                                      " could replace the socket; put it in a directory of your own (aod"
                                      " creates a missing one 0700) or remove that write access")
    return Verdict(Action.USE)


# --- doing it -----------------------------------------------------------------------------------


def stat_or_none(path: str, *, follow: bool = True) -> os.stat_result | None:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Refused(f"cannot inspect {path}: {exc.strerror or exc}") from None


def make_private_dirs(path: str) -> list[str]:
    """Create `path` and its missing parents, each 0700; answer the ones this call created."""
    missing: list[str] = []
    current = os.path.abspath(path)
    # lexists: a dangling symlink is something that is there, to be judged, not built over.
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created: list[str] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: judged like any existing directory
        except OSError as exc:
            raise Refused(f"cannot create directory {directory}: {exc.strerror or exc}") from None
        # A umask that takes owner bits would leave a directory aod cannot use; it is ours to set.
        _chmod_dir(directory, 0o700)
        created.append(directory)
    return created


def _chmod_dir(path: str, mode: int) -> None:
    # Through a descriptor opened without following a symlink: what is chmodded is what was checked.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            raise Refused(f"{path} changed owner while aod was preparing it; refusing to touch it")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def prepare_data_dir(path: Path) -> Path:
    """Create the data dir (0700), or check and tighten an existing one; answer its real path."""
    uid = os.geteuid()
    make_private_dirs(str(path))
    real = os.path.realpath(path)
    if not _own_dir("data dir", real, uid, path):
        raise Refused(f"data dir {path} is a symbolic link to {real}, which does not exist")
    for name in PRIVATE_DIRS:
        _own_dir(f"data dir's {name}/", os.path.join(real, name), uid)
    tightened: dict[str, str] = {}
    for name in PRIVATE_FILES:
        file = os.path.join(real, name)
        st = stat_or_none(file, follow=False)
        verdict = judge_private_file(file, st, uid)
        if verdict.action is Action.REFUSE:
            raise Refused(verdict.reason)
        if verdict.action is Action.TIGHTEN and st is not None:
            # The data dir is 0700 and ours by now: nobody else can swap the file under this chmod.
            os.chmod(file, stat.S_IMODE(st.st_mode) & 0o700)
            tightened[name] = mode_text(st)
    if tightened:
        log.warning(f"files in data dir {real} were open to group/others; removed that access",
                    extra={"data_dir": real, "was": tightened})
    return Path(real)


def _own_dir(what: str, real: str, uid: int, shown: Path | None = None) -> bool:
    """Check (and tighten) one of aod's own directories; answer whether it exists."""
    st = stat_or_none(real)
    verdict = judge_private_dir(what, str(shown or real), st, uid)
    if verdict.action is Action.REFUSE:
        raise Refused(verdict.reason)
    if verdict.action is Action.TIGHTEN and st is not None:
        _chmod_dir(real, 0o700)
        log.warning(f"{what} {real} was {mode_text(st)} (open to group/others); made it 0700",
                    extra={"path": real, "was": mode_text(st), "now": "0700"})
    return st is not None


def prepare_socket_dir(socket_path: Path) -> str:
    """Create the socket's directory (0700) or check an existing one; answer its real path."""
    uid = os.geteuid()
    make_private_dirs(str(socket_path.parent))
    real = os.path.realpath(socket_path.parent)
    verdict = judge_socket_dir(str(socket_path), real, stat_or_none(real), uid)
    if verdict.action is Action.REFUSE:
        raise Refused(verdict.reason)
    if verdict.action is Action.CREATE:
        # Only a dangling symlink gets here: aod does not create what a link points to.
        raise Refused(f"refusing socket {socket_path}: its directory is a symbolic link to {real}, which does not exist")
    return real
