"""A private tmux server per test (its own TMUX_TMPDIR), so tests never touch the user's tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers.daemon import Daemon

# Variables that would point tmux (or aod's runtime guesses) at the tmux this test runs inside.
_LEAKY = ("TMUX", "TMUX_PANE", "TMUX_TMPDIR")


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _LEAKY}


class TmuxServer:
    def __init__(self) -> None:
        # Short: the socket path (<dir>/tmux-<uid>/default) must fit in an AF_UNIX address.
        self.dir = Path(tempfile.mkdtemp(prefix="aodt", dir="/tmp"))
        self.env = {"TMUX_TMPDIR": str(self.dir)}
        # Resolved now: a test may take tmux off PATH, and teardown must still reach the server.
        self.binary = shutil.which("tmux") or "tmux"

    def start(self) -> TmuxServer:
        # A session of its own keeps the server up while tests kill theirs, with a normal PATH
        # for every session it starts later (the server's environment, not its client's).
        self.tmux("new-session", "-d", "-s", "keepalive", "sleep", "100000")
        return self

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], env={**clean_environ(), **self.env}, capture_output=True, text=True, check=check,
            timeout=10,
        )

    def panes(self) -> dict[str, tuple[bool, int]]:
        out = self.tmux("list-panes", "-a", "-F", "#{pane_id} #{pane_dead} #{pane_pid}", check=False).stdout
        return {p: (d == "1", int(pid)) for p, d, pid in (line.split() for line in out.splitlines())}

    def capture(self, pane: str) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", pane).stdout

    def stop(self) -> None:
        self.tmux("kill-server", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_daemon(data_dir: Path, aod_env: dict[str, str], server: TmuxServer, config_text: str = "",
                 path: str | None = None) -> Daemon:
    """A real `aod serve` that talks to `server` (and, with `path`, sees only that PATH)."""
    d = Daemon(data_dir, {**aod_env, **server.env}, config_text)
    for name in ("TMUX", "TMUX_PANE"):
        d.env.pop(name, None)
    if path is not None:
        d.env["PATH"] = path
    return d.start()


def run_cli(daemon: Daemon, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`aod ARGS` as a user runs it, in `daemon`'s environment (its socket, data dir, tmux server)."""
    from tests.conftest import aod_command  # conftest imports this module: not at its top

    env = {**clean_environ(), **daemon.env}
    return subprocess.run([*aod_command(), *args], input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
