from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw
import pytest

from tests.helpers.template_db import migrated_copy

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.helpers.agent_world import World
    from tests.helpers.browser import RecordedPage
    from tests.helpers.fake_daemon import FakeDaemon
    from tests.helpers.inproc import InProcessApi
    from tests.helpers.postgres import Postgres
    from tests.helpers.tmux import TmuxServer

# pytest-xdist's workers inherit COLUMNS=80 and LINES=24 from its terminal: the CLI would then
# cut its tables to 80 columns for every command a test runs. A test that wants a width sets it.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

REPO = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def db_path(data_dir: Path) -> Path:
    return migrated_copy(data_dir / "aod.db")


@pytest.fixture
def conn(db_path: Path) -> Iterator[apsw.Connection]:
    from aod.storage.connection import open_connection

    c = open_connection(db_path)
    yield c
    c.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: an AF_UNIX socket path must fit in 108 bytes, and pytest's
    tmp_path for a long test name does not."""
    path = Path(tempfile.mkdtemp(prefix="aod", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def aod_env(tmp_path: Path) -> dict[str, str]:
    """Environment for an `aod` subprocess that cannot see the real user's config or data."""
    xdg = tmp_path / "xdg"
    env = {}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        path = xdg / name.lower()
        path.mkdir(parents=True, mode=0o700)
        env[name] = str(path)
    return env


def aod_command() -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "aod"
    return [str(script)] if script.exists() else [sys.executable, "-m", "aod.cli.main"]


def run_aod(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
    full_env.update(env or {})
    return subprocess.run(
        [*aod_command(), *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


# A copy of ../shared/fixtures: CI runs on a clean clone wherever it is, without ../shared.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claude-code"


def hook_payload(name: str, **changes: Any) -> dict[str, Any]:
    """A Claude Code hook payload from the fixtures (`name`: its event, e.g. "Stop"), with `changes`."""
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return payload | changes


@pytest.fixture
def daemon(data_dir: Path, aod_env: dict[str, str]) -> Iterator[Any]:
    from tests.helpers.daemon import Daemon

    migrated_copy(data_dir / "aod.db")  # its tests are not about migrating: skip the cost
    d = Daemon(data_dir, aod_env).start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.kill()


@pytest.fixture
def api(data_dir: Path, aod_env: dict[str, str]) -> Iterator[InProcessApi]:
    """The API in this process on a Unix socket (tests/helpers/inproc.py), for tests that only call
    routes (or run `aod` commands against them): no background jobs, no lean protocol, no signals;
    tests of those need the `daemon`."""
    from tests.helpers.inproc import InProcessApi

    migrated_copy(data_dir / "aod.db")
    server = InProcessApi(data_dir, aod_env).start()
    yield server
    server.stop()


@pytest.fixture
def tmux() -> Iterator[TmuxServer]:
    """A private tmux server (its own socket), stopped after the test."""
    from tests.helpers.tmux import TmuxServer  # the helpers import this module: not at its top

    server = TmuxServer().start()
    yield server
    server.stop()


@pytest.fixture
def aod(data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer) -> Iterator[Any]:
    """A real `aod serve` whose agents run in the test's private tmux server."""
    from tests.helpers.tmux import start_daemon

    migrated_copy(data_dir / "aod.db")
    d = start_daemon(data_dir, aod_env, tmux)
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.kill()


@pytest.fixture
def daemons() -> Iterator[list[Any]]:
    """Daemons a test starts itself (append them): any still running are killed after it."""
    started: list[Any] = []
    yield started
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


@pytest.fixture
def world(short_dir: Path, aod_env: dict[str, str]) -> Iterator[World]:
    """An agent's world (tests/helpers/agent_world.py): tmux pane, git checkout, `gh` stand-in; its
    daemons and tmux server are stopped after the test."""
    from tests.helpers.agent_world import World

    w = World(short_dir, aod_env)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def fake_daemon(short_dir: Path) -> Iterator[FakeDaemon]:
    """A stand-in daemon on a Unix socket (tests/helpers/fake_daemon.py); no routes until the test adds them."""
    from tests.helpers.fake_daemon import FakeDaemon

    d = FakeDaemon(short_dir / "aod.sock")
    yield d
    d.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit on `main` (a project to spawn agents in)."""
    path = tmp_path / "shop"
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "README").write_text("shop\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian chromium per test module (a launch costs about a second)."""
    from tests.helpers.browser import launched_browser

    with launched_browser() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[RecordedPage]:
    """A fresh page (its own cookies, 1280x800) that records console and page errors."""
    from tests.helpers.browser import new_page

    with new_page(browser) as p:
        yield p


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster for the whole run (tests/helpers/postgres.py), stopped after."""
    from tests.helpers.postgres import remove_cluster, start_cluster

    pg = start_cluster()
    yield pg
    remove_cluster(pg)


@pytest.fixture
def team_dsn(postgres: Postgres) -> str:
    """A fresh database of that cluster with the team schema; the owner's dsn."""
    from tests.helpers.postgres import new_team_database

    return new_team_database(postgres)
