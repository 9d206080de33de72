"""`aod spawn --agent NAME` with no command starts that agent's own CLI: a real daemon, a private
tmux server, and stand-ins for the agents' programs on the daemon's PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aod.runtime.spawn import DEFAULT_COMMANDS
from tests.helpers.tmux import TmuxServer, run_cli, start_daemon
from tests.helpers.waiting import wait_for


@pytest.fixture
def agent_bin(tmp_path: Path) -> Path:
    """A directory of programs named like each agent's CLI, each writing its name then waiting."""
    path = tmp_path / "bin"
    path.mkdir()
    for (program,) in DEFAULT_COMMANDS.values():
        script = path / program
        script.write_text(f'#!/bin/sh\necho "{program} started" > "$PWD/.started-{program}"\nexec sleep 600\n')
        script.chmod(0o755)
    return path


def test_each_agent_starts_its_own_command(data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer,
                                           repo: Path, agent_bin: Path) -> None:
    daemon = start_daemon(data_dir, aod_env, tmux, path=f"{agent_bin}:{os.environ.get('PATH', os.defpath)}")
    try:
        for agent, (program,) in DEFAULT_COMMANDS.items():
            done = run_cli(daemon, "spawn", "--project", str(repo), "--agent", agent)
            assert done.returncode == 0, done.stderr
            session = daemon.session(done.stdout.strip())
            assert (session["agent"], session["is_alive"]) == (agent, True)
            marker = repo / f".started-{program}"
            wait_for(marker.exists, message=f"{program} to start")
            assert marker.read_text() == f"{program} started\n"
    finally:
        daemon.kill()


def test_an_agent_without_a_known_command_needs_one(data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer,
                                                     repo: Path) -> None:
    daemon = start_daemon(data_dir, aod_env, tmux)
    try:
        done = run_cli(daemon, "spawn", "--project", str(repo), "--agent", "aider")

        assert done.returncode == 2 and "aod knows no command for agent 'aider'" in done.stderr
        assert daemon.get("/v1/sessions").body["items"] == []
    finally:
        daemon.kill()
