"""`aod send` as a user runs it: a message from stdin, and the refusal while the agent waits."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon
from tests.helpers.tmux import run_cli
from tests.helpers.waiting import wait_for


def spawn(daemon: Daemon, project: Path, *command: str) -> str:
    result = run_cli(daemon, "spawn", "--project", str(project), "--", *command)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_message_from_stdin_loses_its_final_newline_only(aod: Daemon, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    typed = tmp_path / "typed"
    # cat on the pane's terminal writes each line as it is entered: an extra newline would be
    # an extra (empty) line, which an agent would take as submitting an empty prompt.
    sid = spawn(aod, project, "sh", "-c", f"exec cat > {typed}")
    assert run_cli(aod, "send", sid, "-", stdin="first\n").returncode == 0
    assert run_cli(aod, "send", sid, "-", stdin="second\n\n").returncode == 0  # one blank line is the user's
    assert run_cli(aod, "send", sid, "-", stdin="third").returncode == 0
    assert run_cli(aod, "send", sid, "end").returncode == 0
    wait_for(lambda: typed.exists() and typed.read_text().endswith("end\n"), message="the messages typed")
    assert typed.read_text() == "first\nsecond\n\nthird\nend\n"


def test_a_refusal_while_the_agent_waits_names_the_force_flag(daemon: Daemon) -> None:
    prompt = hook_payload("PermissionRequest")
    assert daemon.post("/v1/events", {"agent": "claude-code", "session": "s-1", "payload": prompt}).status == 202

    result = run_cli(daemon, "send", "s-1", "yes")

    assert result.returncode == 5
    assert "waiting for input" in result.stderr and "(waiting_input)" in result.stderr
    assert "aod send --force s-1 MESSAGE" in result.stderr
