"""A spawn that cannot work fails at once, through a real daemon, a private tmux server and the CLI:
a program tmux would not find is refused before anything exists, and an agent that is gone right
after its start ends its session `exited` with the reason and its last output."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aod.runtime.spawn import STARTUP_CHECK, program_to_find
from tests.conftest import aod_command
from tests.helpers.daemon import Daemon
from tests.helpers.tmux import TmuxServer, run_cli, start_daemon
from tests.helpers.waiting import wait_for

AOD = aod_command()


def spawn_body(project: Path, *command: str, **extra: Any) -> dict[str, Any]:
    return {"project": str(project), "command": list(command), **extra}


def aod_tmux_sessions(tmux: TmuxServer) -> list[str]:
    out = tmux.tmux("list-sessions", "-F", "#{session_name}", check=False).stdout
    return [name for name in out.split() if name.startswith("aod-")]


@pytest.mark.parametrize(
    ("command", "program"),
    [
        (["claude", "--model", "opus"], "claude"),  # exec'd as it is
        (["./bin/agent"], "./bin/agent"),
        (["claude --model opus"], "claude"),  # through the shell: its first word
        (["  claude  "], "claude"),
        (["/usr/local/bin/claude -p 'hi'"], "/usr/local/bin/claude"),
        (["cd sub && claude"], None),  # the shell's own words
        (["exec claude"], None),
        (["FOO=1 claude"], None),  # an assignment, then the program
        (["$HOME/bin/claude"], None),  # expanded by the shell
        (["~/bin/claude"], None),
        (["'my agent' --go"], None),
        (["(claude)"], None),
        (["   "], None),
    ],
)
def test_which_program_is_looked_up(command: list[str], program: str | None) -> None:
    assert program_to_find(command) == program


def test_a_program_tmux_would_not_find_is_refused_before_anything_starts(
    aod: Daemon, tmux: TmuxServer, repo: Path
) -> None:
    result = run_cli(aod, "spawn", "--project", str(repo), "--", "nonexistent-command")
    assert result.returncode == 1 and result.stdout == ""
    assert "nonexistent-command is not on the daemon's PATH" in result.stderr and "(command_not_found)" in result.stderr
    # One argument goes through the shell: its first word is the program.
    for command in (["nonexistent-command --model x"], ["nonexistent-command", "--model", "x"]):
        reply = aod.post("/v1/sessions", spawn_body(repo, *command))
        assert reply.status == 400 and reply.body["error"]["code"] == "command_not_found", reply.body
    missing = aod.post("/v1/sessions", spawn_body(repo, "./run-agent.sh"))
    assert missing.status == 400 and f"./run-agent.sh is no executable file (looked in {repo})" in missing.body["error"]["message"]
    (repo / "notes.txt").write_text("not a program\n")
    not_executable = aod.post("/v1/sessions", spawn_body(repo, "./notes.txt", "--go"))
    assert not_executable.status == 400 and not_executable.body["error"]["code"] == "command_not_found"
    worktree = aod.post("/v1/sessions", spawn_body(repo, "nonexistent-command", worktree=True))
    assert worktree.status == 400
    # Nothing was made: no session, no tmux session, no worktree or branch.
    assert aod.get("/v1/sessions").body["items"] == []
    assert aod_tmux_sessions(tmux) == []
    assert not (aod.data_dir / "worktrees").exists()
    branches = subprocess.run(["git", "-C", str(repo), "branch", "--list", "aod/*"], capture_output=True, text=True)
    assert branches.stdout == ""


def test_an_agent_gone_at_once_ends_its_session_with_the_reason(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    script = 'echo "starting"; echo "error: unknown option --nope" >&2; exit 3'
    started = time.monotonic()
    result = run_cli(aod, "spawn", "--project", str(repo), "--", "sh", "-c", script)
    assert time.monotonic() - started >= STARTUP_CHECK
    assert result.returncode == 1 and result.stdout == ""
    assert "(spawn_failed)" in result.stderr and "status 3" in result.stderr
    assert "starting\nerror: unknown option --nope" in result.stderr  # its last output, in order

    (s,) = aod.get("/v1/sessions").body["items"]
    assert s["id"] in result.stderr
    assert (s["status"], s["activity"], s["termination_reason"]) == ("exited", "exited", "exited")
    assert s["is_alive"] is not None and not s["is_alive"]
    assert s["error"].startswith(f"spawn failed: the command exited within {round(STARTUP_CHECK * 1000)} ms (status 3)")
    assert s["error"].endswith("error: unknown option --nope")
    assert s["error_at"] is not None and s["ended_at"] is not None
    assert aod_tmux_sessions(tmux) == []  # the dead pane was read, then removed
    show = run_cli(aod, "show", s["id"]).stdout
    assert "spawn failed: the command exited" in next(line for line in show.splitlines() if line.startswith("error"))


def test_a_shell_line_is_judged_by_running_it(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    # `cd` is the shell's own: nothing to look up, so the start decides.
    reply = aod.post("/v1/sessions", spawn_body(repo, "cd /no/such/dir && exec sleep 600"))
    assert reply.status == 422 and reply.body["error"]["code"] == "spawn_failed", reply.body
    assert "/no/such/dir" in reply.body["error"]["message"]
    silent = aod.post("/v1/sessions", spawn_body(repo, "exit 7"))
    assert silent.status == 422 and "status 7" in silent.body["error"]["message"]
    assert "it printed nothing" in silent.body["error"]["message"]
    assert {s["status"] for s in aod.get("/v1/sessions").body["items"]} == {"exited"}
    assert aod_tmux_sessions(tmux) == []


def test_an_agent_that_lives_then_exits_leaves_no_dead_pane(aod: Daemon, tmux: TmuxServer, repo: Path) -> None:
    reply = aod.post("/v1/sessions", spawn_body(repo, "sh", "-c", "sleep 1"))
    assert reply.status == 201, reply.body
    pane = reply.body["runtime_handle"]
    assert pane in tmux.panes() and reply.body["is_alive"]
    # remain-on-exit was only held for the start check: on a normal exit tmux removes the pane.
    wait_for(lambda: pane not in tmux.panes(), timeout=10, message="the pane to go when its agent exits")
    assert aod_tmux_sessions(tmux) == []


def test_the_agent_runs_with_the_daemons_path(data_dir: Path, aod_env: dict[str, str], tmux: TmuxServer,
                                              repo: Path, tmp_path: Path) -> None:
    # The private tmux server was started with the test's PATH, which lacks this directory.
    bin_dir = tmp_path / "agent-bin"
    bin_dir.mkdir()
    agent = bin_dir / "my-agent"
    agent.write_text('#!/bin/sh\necho "my-agent $# args, PATH=$PATH"\nexec sleep 600\n')
    agent.chmod(0o755)
    daemon = start_daemon(data_dir, aod_env, tmux, path=f"{bin_dir}:{os.environ['PATH']}")
    try:
        for command in (["my-agent"], ["my-agent", "--flag"]):
            reply = daemon.post("/v1/sessions", spawn_body(repo, *command))
            assert reply.status == 201, reply.body
            pane = reply.body["runtime_handle"]
            wait_for(lambda p=pane: "my-agent" in tmux.capture(p), message="the agent's first line")
            assert f"PATH={bin_dir}:" in tmux.capture(pane)
            assert tmux.panes()[pane][0] is False
    finally:
        daemon.kill()

