"""aod/proc.py, the one subprocess runner: output, exit codes, a missing program, and that a
timeout or a cancelled caller leaves no process of the program's group behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aod import proc


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaps yet (its parent was killed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


async def _pid_in(path: Path) -> int:
    for _ in range(200):
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} was never written")


async def test_run_captures_both_streams_and_the_exit_code() -> None:
    done = await proc.run(["sh", "-c", "read x; echo out:$x; echo err >&2; exit 3"], stdin=b"in\n", timeout=5)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out:in\n", b"err\n")


async def test_output_returns_stdout_and_names_a_failure_with_the_end_of_stderr() -> None:
    assert await proc.output(["sh", "-c", "echo $GREETING"], env={"GREETING": "hi"}, timeout=5) == b"hi\n"
    with pytest.raises(proc.ProgramFailed, match=r"^sh exited with 4: boom$") as failed:
        await proc.output(["sh", "-c", "echo boom >&2; exit 4"], timeout=5)
    assert failed.value.finished.returncode == 4


async def test_a_missing_program_is_said_so(tmp_path: Path) -> None:
    with pytest.raises(proc.ProgramMissing, match="cannot run aod-no-such-program"):
        await proc.run(["aod-no-such-program"], timeout=5)
    with pytest.raises(proc.ProgramError, match="cannot run sh"):
        await proc.run(["sh", "-c", "true"], cwd=str(tmp_path / "missing"), timeout=5)


async def test_a_timeout_kills_the_program_and_what_it_forked(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    with pytest.raises(proc.ProgramTimeout, match=r"^sh timed out after 0.5s$"):
        await proc.run(["sh", "-c", f"sleep 30 & echo $! > {pids}; wait"], timeout=0.5)
    helper = await _pid_in(pids)
    assert _gone(helper), "the helper the program forked outlived the timeout"


async def test_a_cancelled_caller_leaves_no_process_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    task = asyncio.create_task(proc.run(["sh", "-c", f"echo $$ > {pids}; sleep 30 & wait"], timeout=30))
    shell = await _pid_in(pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(shell)
