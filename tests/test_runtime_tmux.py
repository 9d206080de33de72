"""Real tmux, on a private server: probing panes, typing into them, spawning and ending agents."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aod.runtime import probes, spawn, tmux
from aod.runtime.kill import end_runtime
from aod.runtime.probe import Probe
from aod.runtime.send import RuntimeSendError, send_to_session
from tests.helpers.tmux import TmuxServer
from tests.helpers.waiting import wait_for


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxServer]:
    srv = TmuxServer().start()
    for name in ("TMUX", "TMUX_PANE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMUX_TMPDIR", srv.env["TMUX_TMPDIR"])
    yield srv
    srv.stop()


async def new_pane(command: list[str], tmp_path: Path, name: str = "t", env: dict[str, str] | None = None) -> spawn.SpawnedPane:
    return await spawn.start_in_tmux(name, cwd=tmp_path, command=command, env=env or {})


def target(pane: str) -> probes.Target:
    return probes.Target("s-1", "tmux", pane, None)


async def test_spawned_pane_runs_the_command_with_its_environment(server: TmuxServer, tmp_path: Path) -> None:
    pane = await new_pane(["sh", "-c", 'echo "id=$AOD_SESSION_ID dir=$(pwd)"; exec sleep 600'], tmp_path,
                          env={"AOD_SESSION_ID": "proj-7"})
    assert pane.pane_id.startswith("%") and pane.tmux_session == "t"
    assert server.panes()[pane.pane_id] == (False, pane.pane_pid)
    wait_for(lambda: f"id=proj-7 dir={tmp_path}" in server.capture(pane.pane_id), message="the pane's output")


async def test_a_taken_name_gets_a_suffix(server: TmuxServer, tmp_path: Path) -> None:
    first = await new_pane(["sleep", "600"], tmp_path, name="aod-p-1")
    second = await new_pane(["sleep", "600"], tmp_path, name="aod-p-1")
    assert (first.tmux_session, second.tmux_session) == ("aod-p-1", "aod-p-1-2")


async def test_probe_alive_then_dead(server: TmuxServer, tmp_path: Path) -> None:
    pane = await new_pane(["sleep", "600"], tmp_path)
    (seen,) = await probes.probe_all([target(pane.pane_id)], timeout=5)
    assert seen.probe is Probe.ALIVE
    server.tmux("kill-session", "-t", pane.tmux_session)
    (seen,) = await probes.probe_all([target(pane.pane_id)], timeout=5)
    assert seen.probe is Probe.DEAD


async def test_a_dead_pane_kept_by_remain_on_exit_is_dead(server: TmuxServer, tmp_path: Path) -> None:
    # Alive past spawn's start check (STARTUP_CHECK), then gone.
    pane = await new_pane(["sh", "-c", "sleep 1"], tmp_path)
    server.tmux("set-option", "-t", pane.pane_id, "remain-on-exit", "on")
    wait_for(lambda: server.panes()[pane.pane_id][0], message="the pane to die")
    (seen,) = await probes.probe_all([target(pane.pane_id)], timeout=5)
    assert seen.probe is Probe.DEAD


async def test_no_server_means_every_pane_is_dead(server: TmuxServer) -> None:
    server.tmux("kill-server")
    (seen,) = await probes.probe_all([target("%0")], timeout=5)
    assert seen.probe is Probe.DEAD


async def test_a_server_exiting_while_asked_means_every_pane_is_dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a real tmux answers now and then in the moment after kill-server.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tmux").write_text("#!/bin/sh\necho 'server exited unexpectedly' >&2\nexit 1\n")
    (fake / "tmux").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    (seen,) = await probes.probe_all([target("%0")], timeout=5)
    assert seen.probe is Probe.DEAD
    assert await end_runtime({"runtime": "tmux", "runtime_handle": "%0"}) is False


async def test_tmux_missing_is_a_failed_probe(server: TmuxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pane = await new_pane(["sleep", "600"], tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no tmux here
    seen = await probes.probe_all([target(pane.pane_id), target("%99")], timeout=5)
    assert {o.probe for o in seen} == {Probe.FAILED}
    assert all("not installed" in (o.detail or "") for o in seen)


async def test_a_hung_tmux_is_a_failed_probe(server: TmuxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    pid_file = tmp_path / "tmux.pid"
    (fake / "tmux").write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    (fake / "tmux").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    (seen,) = await probes.probe_all([target("%0")], timeout=0.5)
    assert seen.probe is Probe.FAILED and "did not answer" in (seen.detail or "")
    # Given up at the deadline, not when tmux ended: the hung tmux was killed, not waited out.
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_send_pastes_multiline_text_then_enter(server: TmuxServer, tmp_path: Path) -> None:
    out = tmp_path / "typed.txt"
    # `cat > file` records exactly what the pane's program receives.
    pane = await new_pane(["sh", "-c", f"stty -echo; cat > {out}"], tmp_path)
    session = {"id": "p-1", "runtime": "tmux", "runtime_handle": pane.pane_id}
    long_line = "x" * 3000
    await send_to_session(session, f"first line\nsecond line {long_line}")
    await send_to_session(session, "third")
    wait_for(lambda: out.exists() and out.read_text().count("\n") >= 3, message="the typed text")
    assert out.read_text().splitlines() == ["first line", f"second line {long_line}", "third"]
    assert server.tmux("list-buffers").stdout == ""  # each paste deletes its buffer


async def test_send_shows_up_in_capture_pane(server: TmuxServer, tmp_path: Path) -> None:
    pane = await new_pane(["cat"], tmp_path)
    await send_to_session({"id": "p-1", "runtime": "tmux", "runtime_handle": pane.pane_id}, "hello from aod")
    wait_for(lambda: "hello from aod" in server.capture(pane.pane_id), message="the text in the pane")


@pytest.mark.parametrize(
    "session",
    [
        {"id": "p-1", "runtime": "process", "runtime_handle": "123"},
        {"id": "p-1", "runtime": None, "runtime_handle": None},
        {"id": "p-1", "runtime": "tmux", "runtime_handle": None},
    ],
    ids=["process", "none", "no-handle"],
)
async def test_send_needs_a_tmux_pane(session: dict[str, object]) -> None:
    with pytest.raises(RuntimeSendError, match="no tmux pane"):
        await send_to_session(session, "hi")


async def test_send_to_a_gone_pane_fails(server: TmuxServer) -> None:
    with pytest.raises(RuntimeSendError, match="can't find pane"):
        await send_to_session({"id": "p-1", "runtime": "tmux", "runtime_handle": "%77"}, "hi")


async def test_send_without_tmux_fails(server: TmuxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeSendError, match="not installed"):
        await send_to_session({"id": "p-1", "runtime": "tmux", "runtime_handle": "%0"}, "hi")


async def test_end_runtime_kills_the_pane(server: TmuxServer, tmp_path: Path) -> None:
    pane = await new_pane(["sleep", "600"], tmp_path)
    session = {"id": "p-1", "runtime": "tmux", "runtime_handle": pane.pane_id}
    assert await end_runtime(session) is True
    assert pane.pane_id not in server.panes()
    assert await end_runtime(session) is False  # nothing left to end


async def test_tmux_runner_reports_failures(server: TmuxServer) -> None:
    with pytest.raises(tmux.TmuxFailed, match="can't find"):
        await tmux.check("kill-pane", "-t", "%404")
