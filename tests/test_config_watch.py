"""The config watcher finds the file wherever it appears: a directory made after start, deleted and
made again, a file replaced by rename, a broken file fixed. It never watches a tree recursively."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aod.config import load_config
from aod.config_reload import ConfigHolder, ConfigWatch
from aod.jobs import Job
from tests.conftest import aod_command
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for

T = TypeVar("T")
needs_proc = pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="counts inotify watches in /proc")


def rewrite(path: Path, text: str) -> None:
    # As editors save: a new file renamed over the old one.
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    tmp.replace(path)


async def until(predicate: Callable[[], T], message: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.02)
    return value


def watched_inodes(pid: int | str = "self") -> set[int]:
    """The inode of every directory an inotify instance of the process watches (one per watch)."""
    inodes = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        with contextlib.suppress(OSError):
            for line in info.read_text().splitlines():
                if line.startswith("inotify wd:"):
                    inodes.add(int(line.split(" ino:")[1].split()[0], 16))
    return inodes


@needs_proc
async def test_a_file_made_after_start_in_a_directory_that_did_not_exist_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    for n in range(20):  # a home with a tree in it, which a recursive watch would cover
        (home / f"project{n}" / "src").mkdir(parents=True)
    config_dir = home / ".config" / "aod"
    file = config_dir / "config.toml"
    monkeypatch.delenv("AOD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    caplog.set_level(logging.INFO, logger="aod.config")
    holder = ConfigHolder(load_config(data_dir=tmp_path / "data", socket=tmp_path / "s.sock"))
    assert holder.path == file and holder.current.config_path is None and holder.current.scm.interval == 60.0

    def watching() -> str | None:
        moves = [r for r in caplog.records if r.getMessage() == "watching the config file"]
        return getattr(moves[-1], "directory", None) if moves else None

    async def watches(directory: Path) -> None:
        await until(lambda: watching() == str(directory), f"the watch on {directory}")
        # One watch, on that directory alone: nothing below it.
        await until(lambda: watched_inodes() == {directory.stat().st_ino}, f"one inotify watch on {directory}")

    stop = asyncio.Event()
    job = Job("config-watch", ConfigWatch(holder, stop).step)
    job.start()
    try:
        await watches(home)
        (home / ".config").mkdir()
        await watches(home / ".config")
        config_dir.mkdir()
        await watches(config_dir)
        file.write_text('[scm]\ninterval = "7s"\n')
        await until(lambda: holder.current.scm.interval == 7.0, "the new file loaded")
        assert holder.current.config_path == file and holder.errors == []

        rewrite(file, '[scm]\ninterval = "8s"\n')
        await until(lambda: holder.current.scm.interval == 8.0, "the file replaced by rename")
        assert not file.with_name("config.toml.swp").exists()

        file.write_text("[scm\n")
        await until(lambda: holder.errors, "the broken file reported")
        assert "invalid TOML" in holder.errors[0] and holder.current.scm.interval == 8.0
        rewrite(file, '[scm]\ninterval = "9s"\n')
        await until(lambda: holder.current.scm.interval == 9.0, "the fixed file loaded")
        assert holder.errors == []

        # The directory deleted: defaults again (the default location may come and go), and the
        # watch moves up to what is left.
        shutil.rmtree(home / ".config")
        await until(lambda: holder.current.config_path is None, "the defaults back")
        assert holder.current.scm.interval == 60.0 and holder.errors == []
        await watches(home)
        # Made again, directory and file at once: the file lands before the new watch exists.
        config_dir.mkdir(parents=True)
        file.write_text('[scm]\ninterval = "7s"\n')
        await until(lambda: holder.current.scm.interval == 7.0, "the file in the directory made again")
        await watches(config_dir)
    finally:
        stop.set()
        # The stop event ends the watch within a watcher step, not after its 30 s poll.
        await until(lambda: job.state == "waiting" and job.next_due is None, "the watch ended", timeout=5)
        await asyncio.wait_for(job.stop(), 5)


def _accepted_twice(d: Daemon, sid: str) -> bool:
    """Whether one payload sent twice is stored twice: the dedup window is shorter than the gap."""
    payload = {"session_id": sid, "hook_event_name": "Stop", "cwd": "/tmp"}
    first = d.post("/v1/hooks/claude-code", payload).body["accepted"]
    time.sleep(0.3)
    return first == 1 and d.post("/v1/hooks/claude-code", payload).body["accepted"] == 1


def test_the_daemon_follows_its_config_directory_deleted_and_made_again(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    d = Daemon(data, aod_env)
    etc = short_dir / "etc"
    file = etc / "aod" / "config.toml"
    file.parent.mkdir(parents=True)
    header = '[server]\ntcp = "127.0.0.1:0"\n'
    file.write_text(header + '[ingest]\ndedup_window = "1m"\n')
    d.config.unlink()
    d.config = file
    d.env["AOD_CONFIG"] = str(file)
    d.start()
    try:
        assert d.status()["config"] == {"path": str(file), "errors": []}
        shutil.rmtree(etc)  # two levels: the watch moves up to short_dir
        wait_for(lambda: d.status()["config"]["errors"], message="the missing file reported")
        assert "config file not found" in d.status()["config"]["errors"][0]
        assert not _accepted_twice(d, "gone-1")  # the last good config (1 min window) still rules

        file.parent.mkdir(parents=True)
        file.write_text(header + "[ingest\n")  # created broken
        wait_for(lambda: "invalid TOML" in "".join(d.status()["config"]["errors"]), message="the broken file")
        rewrite(file, header + '[ingest]\ndedup_window = "100ms"\n')  # fixed by an editor's rename
        wait_for(lambda: d.status()["config"]["errors"] == [], message="the fixed file")
        assert _accepted_twice(d, "back-1")
        reloads = [json.loads(line) for line in d.log.read_text().splitlines() if '"config reloaded"' in line]
        assert [r["needs_restart"] for r in reloads] == [[]] and reloads[0]["path"] == str(file)
        moves = [json.loads(line)["directory"] for line in d.log.read_text().splitlines()
                 if '"watching the config file"' in line]
        assert str(short_dir) in moves and moves[-1] == str(file.parent)
    finally:
        d.stop()


class NetnsDaemon(Daemon):
    """A daemon with no config file, so on the default TCP port 8765: in a network namespace of
    its own, where that port is free and nothing else can reach it. The Unix socket is a path,
    reachable from any network namespace."""

    def start(self, wait: bool = True) -> NetnsDaemon:
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(["unshare", "--net", "--map-root-user", *aod_command(), "serve"], env=self.env,
                                     stdout=self._log_file, stderr=self._log_file)
        if wait:
            self.wait_ready()
        return self


def _private_network() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "--map-root-user", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.fixture
def home_daemon(short_dir: Path, aod_env: dict[str, str]) -> Iterator[tuple[NetnsDaemon, Path]]:
    if not _private_network():
        pytest.skip("unshare --net --map-root-user is not allowed here (and the default port 8765 is not ours)")
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    home = short_dir / "home"
    home.mkdir()
    d = NetnsDaemon(data, aod_env)
    d.config.unlink()
    del d.env["AOD_CONFIG"]
    d.env["XDG_CONFIG_HOME"] = str(home / ".config")
    yield d.start(), home
    if d.proc is not None and d.proc.poll() is None:
        d.kill()


@needs_proc
def test_the_daemon_loads_a_default_config_file_made_after_start(home_daemon: tuple[NetnsDaemon, Path]) -> None:
    d, home = home_daemon
    file = home / ".config" / "aod" / "config.toml"
    status = d.status()
    assert status["config"] == {"path": None, "errors": []} and status["tcp"] == "127.0.0.1:8765"

    def log_lines(msg: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in d.log.read_text().splitlines() if f'"{msg}"' in line]

    def watches(directory: Path) -> None:
        wait_for(lambda: log_lines("watching the config file")[-1]["directory"] == str(directory),
                 message=f"the watch on {directory}")
        assert d.proc is not None
        pid = d.proc.pid
        # The line is logged just before the watcher's thread adds its inotify watch.
        wait_for(lambda: directory.stat().st_ino in watched_inodes(pid), message=f"an inotify watch on {directory}")

    watches(home)
    (home / ".config").mkdir()
    watches(home / ".config")
    file.parent.mkdir()
    watches(file.parent)
    file.write_text('[server]\ntcp = ""\n[ingest]\ndedup_window = "100ms"\n')
    wait_for(lambda: d.status()["config"]["path"] == str(file), message="the new file loaded")
    assert _accepted_twice(d, "late-1")
    (reload,) = log_lines("config reloaded")
    assert reload["needs_restart"] == ["server"] and d.status()["tcp"] == "127.0.0.1:8765"
    assert d.stop() == 0
