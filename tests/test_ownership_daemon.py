"""A real `aod serve` touches only what is its own: the socket path, the socket's directory, the data dir.

Every refusal is checked the way a user meets it: exit code 2, one JSON error line on stderr (no
traceback), and the thing refused still there, unchanged. "Owned by another user" needs a second
uid: as root the tests chown directories to 65534 (nobody); one test runs the daemon itself as
nobody through setpriv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import aod_command
from tests.helpers.daemon import Daemon, request

NOBODY = 65534
ROOT = os.geteuid() == 0


@pytest.fixture
def new_daemon(aod_env: dict[str, str]) -> Iterator[Callable[[Path, Path], Daemon]]:
    """Daemons on a data dir and a socket path of the test's choosing, killed at the end whatever happens."""
    made: list[Daemon] = []

    def make(data_dir: Path, socket_path: Path) -> Daemon:
        d = Daemon(data_dir, aod_env)
        d.socket = socket_path
        d.env["AOD_SOCKET"] = str(socket_path)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


@pytest.fixture
def foreign_dir(short_dir: Path) -> Path:
    """A directory of another user, 0755 (readable, so only its owner makes it unusable)."""
    if not ROOT:
        return Path("/")  # root's; the only other-owned directory a plain user surely has
    path = short_dir / "theirs"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    os.chown(path, NOBODY, NOBODY)
    return path


def refused(d: Daemon) -> str:
    """Run `aod serve` expecting a refusal; answer its one error message."""
    result = subprocess.run([*aod_command(), "serve"], env=d.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "exc" not in errors[0], result.stderr
    return str(errors[0]["msg"])


def identity(path: Path) -> tuple[int, int, int, int, int]:
    st = path.lstat()
    return st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_mtime_ns


def log_lines(d: Daemon, logger: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in d.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == logger]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def stale_socket(path: Path) -> None:
    """A socket file whose process died by SIGKILL (so nothing cleaned it up)."""
    code = ("import socket, sys, time\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()\n"
            "print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.kill()
    proc.wait(10)
    assert stat.S_ISSOCK(path.lstat().st_mode)


# --- what is at the socket path -------------------------------------------------------------------


def test_a_regular_file_at_the_socket_path_is_refused_and_kept(short_dir: Path, new_daemon) -> None:
    target = short_dir / "aod.sock"
    target.write_text("someone's notes\n")
    before = identity(target)
    message = refused(new_daemon(short_dir / "data", target))
    assert message.startswith(f"refusing socket {target}: a regular file is in its place")
    assert identity(target) == before and target.read_text() == "someone's notes\n"


def test_a_symlink_at_the_socket_path_is_refused_and_kept(short_dir: Path, new_daemon) -> None:
    pointed = short_dir / "elsewhere.sock"
    stale_socket(pointed)  # a link to a socket is still not a socket aod made
    link = short_dir / "aod.sock"
    link.symlink_to(pointed)
    before, pointed_before = identity(link), identity(pointed)
    message = refused(new_daemon(short_dir / "data", link))
    assert "a symbolic link is in its place" in message
    assert identity(link) == before and os.readlink(link) == str(pointed)
    assert identity(pointed) == pointed_before


def test_a_directory_at_the_socket_path_is_refused_and_kept(short_dir: Path, new_daemon) -> None:
    target = short_dir / "aod.sock"
    target.mkdir()
    (target / "inside").write_text("x")
    before = identity(target)
    assert "a directory is in its place" in refused(new_daemon(short_dir / "data", target))
    assert identity(target) == before and (target / "inside").read_text() == "x"


def test_another_live_daemons_socket_is_refused_and_keeps_answering(short_dir: Path, new_daemon) -> None:
    shared = short_dir / "aod.sock"
    first = new_daemon(short_dir / "one", shared).start()
    before = identity(shared)
    message = refused(new_daemon(short_dir / "two", shared))
    assert message == (f"refusing socket {shared}: another process (pid {first.proc.pid}) is serving on it;"
                       " stop it, or give this daemon another --socket")
    assert identity(shared) == before
    assert first.get("/healthz").status == 200
    assert first.stop() == 0


def test_a_stale_socket_of_a_killed_process_is_replaced(short_dir: Path, new_daemon) -> None:
    path = short_dir / "aod.sock"
    stale_socket(path)
    stale = path.lstat().st_ctime_ns
    d = new_daemon(short_dir / "data", path).start()
    assert path.lstat().st_ctime_ns > stale, "the daemon answers on a socket of its own"
    assert d.get("/healthz").status == 200
    assert [line["socket"] for line in log_lines(d, "aod.unix_socket")] == [str(path)]
    assert d.stop() == 0
    assert not path.exists()


@pytest.mark.skipif(not ROOT, reason="only root can make a socket file owned by another uid")
def test_a_stale_socket_of_another_user_is_refused_and_kept(short_dir: Path, new_daemon) -> None:
    path = short_dir / "aod.sock"
    stale_socket(path)
    os.chown(path, NOBODY, NOBODY)
    before = identity(path)
    assert f"a stale socket of uid {NOBODY} is there" in refused(new_daemon(short_dir / "data", path))
    assert identity(path) == before


def test_a_start_failing_after_the_bind_removes_its_own_socket_only(short_dir: Path, new_daemon) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()
        d = new_daemon(short_dir / "data", short_dir / "aod.sock")
        d.config.write_text(f'[server]\ntcp = "{host}:{port}"\n')
        # The TCP refusal comes after the stream jobs started: they stop before storage closes,
        # so the refusal is the one error line (no janitor traceback against a closed database).
        assert f"cannot listen on {host}:{port}" in refused(d)
    assert not d.socket.exists() and not d.socket.is_symlink()


# --- the socket's directory ---------------------------------------------------------------------


def test_a_world_writable_socket_directory_is_refused_and_not_chmodded(short_dir: Path, new_daemon) -> None:
    shared = short_dir / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    message = refused(new_daemon(short_dir / "data", shared / "aod.sock"))
    assert f"its directory {shared} is writable by group or others (mode 1777)" in message
    assert mode(shared) == 0o1777 and list(shared.iterdir()) == []


def test_a_socket_directory_of_another_user_is_refused(foreign_dir: Path, short_dir: Path, new_daemon) -> None:
    before = identity(foreign_dir)
    path = foreign_dir / f"aod-{os.getpid()}.sock"
    message = refused(new_daemon(short_dir / "data", path))
    owner = foreign_dir.stat().st_uid
    assert f"its directory {foreign_dir} belongs to uid {owner}, not to this daemon's uid {os.geteuid()}" in message
    assert identity(foreign_dir) == before and not path.exists()


def test_missing_socket_directories_are_made_0700_and_an_existing_one_is_left_as_it_is(
    short_dir: Path, new_daemon
) -> None:
    short_dir.chmod(0o755)  # ours, readable by others: usable (the socket is 0600), and not to be chmodded
    path = short_dir / "a" / "b" / "aod.sock"
    d = new_daemon(short_dir / "data", path).start()
    assert (mode(short_dir), mode(short_dir / "a"), mode(short_dir / "a" / "b"), mode(path)) == (0o755, 0o700, 0o700, 0o600)
    assert d.stop() == 0
    assert not path.exists() and (short_dir / "a" / "b").is_dir()


def test_a_symlinked_socket_directory_is_judged_by_its_target(short_dir: Path, new_daemon) -> None:
    real = short_dir / "real"
    real.mkdir(mode=0o700)
    (short_dir / "link").symlink_to(real)
    d = new_daemon(short_dir / "data", short_dir / "link" / "aod.sock").start()
    assert stat.S_ISSOCK((real / "aod.sock").lstat().st_mode)
    assert d.stop() == 0
    assert not (real / "aod.sock").exists()

    shared = short_dir / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (short_dir / "link2").symlink_to(shared)
    message = refused(new_daemon(short_dir / "data", short_dir / "link2" / "aod.sock"))
    assert f"its directory {shared} is writable by group or others" in message
    assert mode(shared) == 0o1777


# --- the data dir -------------------------------------------------------------------------------


def test_an_open_data_dir_and_its_files_are_tightened_and_logged(short_dir: Path, new_daemon) -> None:
    data = short_dir / "data"
    first = new_daemon(data, short_dir / "aod.sock").start()
    assert first.stop() == 0
    data.chmod(0o755)
    (data / "spool").chmod(0o755)
    (data / "aod.db").chmod(0o644)
    (data / "token").chmod(0o640)
    d = new_daemon(data, short_dir / "aod.sock").start()
    assert (mode(data), mode(data / "spool"), mode(data / "aod.db"), mode(data / "token")) == (0o700, 0o700, 0o600, 0o600)
    for sidecar in ("aod.db-wal", "aod.db-shm"):
        assert mode(data / sidecar) == 0o600
    warnings = [(line["level"], line["msg"]) for line in log_lines(d, "aod.ownership")]
    assert warnings == [
        ("warning", f"data dir {data} was 0755 (open to group/others); made it 0700"),
        ("warning", f"data dir's spool/ {data / 'spool'} was 0755 (open to group/others); made it 0700"),
        ("warning", f"files in data dir {data} were open to group/others; removed that access"),
    ]
    assert log_lines(d, "aod.ownership")[2]["was"] == {"aod.db": "0644", "token": "0640"}
    assert d.stop() == 0


def test_a_new_data_dir_is_made_0700_with_its_missing_parents(short_dir: Path, new_daemon) -> None:
    mine = short_dir / "x"
    mine.mkdir()
    mine.chmod(0o755)
    data = mine / "y" / "data"
    d = new_daemon(short_dir / "unused", short_dir / "aod.sock")
    d.env["AOD_DATA_DIR"] = str(data)
    d.start()
    assert (mode(mine), mode(mine / "y"), mode(data)) == (0o755, 0o700, 0o700)
    assert log_lines(d, "aod.ownership") == []
    assert d.stop() == 0


def test_a_data_dir_of_another_user_is_refused_and_not_written(foreign_dir: Path, short_dir: Path, new_daemon) -> None:
    before = identity(foreign_dir)
    message = refused(new_daemon(foreign_dir, short_dir / "aod.sock"))
    assert message.startswith(f"data dir {foreign_dir} belongs to uid {foreign_dir.stat().st_uid}")
    assert identity(foreign_dir) == before
    assert not (foreign_dir / "aod.lock").exists() and not (foreign_dir / "aod.db").exists()


def test_a_world_writable_data_dir_is_refused_not_chmodded(short_dir: Path, new_daemon) -> None:
    shared = short_dir / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    message = refused(new_daemon(shared, short_dir / "aod.sock"))
    assert f"data dir {shared} is writable by anyone (mode 1777)" in message
    assert mode(shared) == 0o1777 and list(shared.iterdir()) == []


# --- shutdown -----------------------------------------------------------------------------------


def test_sigterm_removes_the_daemons_own_socket_but_not_what_replaced_it(short_dir: Path, new_daemon) -> None:
    path = short_dir / "aod.sock"
    d = new_daemon(short_dir / "data", path).start()
    assert d.stop() == 0
    assert not path.exists()

    d = new_daemon(short_dir / "data", path).start()
    path.rename(short_dir / "moved.sock")
    path.write_text("not aod's\n")
    assert d.stop() == 0
    assert path.read_text() == "not aod's\n"
    assert stat.S_ISSOCK((short_dir / "moved.sock").lstat().st_mode), "the moved socket is no longer at its path"
    [warning] = [line for line in log_lines(d, "aod.unix_socket") if line["level"] == "warning"]
    assert warning["msg"] == f"{path} is no longer this daemon's socket (a regular file replaced it); left it there"


# --- as a user who is not root --------------------------------------------------------------------


def as_nobody() -> list[str]:
    """`aod` run as uid 65534, or a skip that says why it cannot be.

    Here the venv's python is a link into /root/.pyenv, under a 0700 /root. It still starts as
    nobody: setpriv execs it while it still holds root's capabilities, and the loader, unable to
    read the interpreter's RUNPATH under /root, falls back to the system's libpython3.11. Whether
    that works is checked, not assumed.
    """
    if not ROOT:
        pytest.skip("switching to uid 65534 needs root")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *aod_command()]
    check = subprocess.run([*command, "--version"], capture_output=True, text=True, cwd="/", timeout=30)
    if check.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run {aod_command()[0]}: {check.stderr.strip()[-200:]}")
    return command


def test_as_a_plain_user(short_dir: Path) -> None:
    command = as_nobody()
    short_dir.chmod(0o711)  # root's; nobody may pass through to its own directory below
    home = short_dir / "h"
    home.mkdir(mode=0o700)
    data = home / "data"
    data.mkdir()
    data.chmod(0o755)
    for path in (home, data):
        os.chown(path, NOBODY, NOBODY)
    config = home / "config.toml"
    config.write_text('[server]\ntcp = ""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
    env.update(HOME=str(home), AOD_CONFIG=str(config), AOD_DATA_DIR=str(data))

    def serve(socket_path: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([*command, "serve", "--socket", str(socket_path)], env=env, cwd=home,
                                stderr=subprocess.PIPE, text=True)

    # A directory of root's (not writable by nobody either way) is not the daemon's to use.
    proc = serve(short_dir / "aod.sock")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert f"its directory {short_dir} belongs to uid 0, not to this daemon's uid {NOBODY}" in err
    assert "Traceback" not in err
    # The data dir came first, and is nobody's own: tightened even though the start was then refused.
    assert f"data dir {data} was 0755 (open to group/others); made it 0700" in err

    sock = home / "run" / "aod.sock"
    proc = serve(sock)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert request(sock, "GET", "/healthz").status == 200
        for path, want in ((data, 0o700), (home / "run", 0o700), (sock, 0o600)):
            st = path.lstat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, want), path
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not sock.exists()
