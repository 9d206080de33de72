"""Running a program to its end (tmux, ps, git, gh, a notifier command) off the event loop's back.

The one subprocess runner of the daemon: asyncio subprocesses never block the loop; each program
starts in a process group of its own, so a timeout or a cancelled caller kills the program and
every helper it forked (gh spawns git, a shell script spawns curl) and nothing is left behind,
not even a zombie. Output is captured whole; callers word the errors for their own users.
Long-lived streams (the tmux control-mode client, `aod.runtime.tmuxwatch`) are not run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Enough of stderr to say what went wrong, never a whole log.
ERROR_TAIL = 500


class ProgramError(RuntimeError):
    """The program could not run, failed, or timed out; `str()` says which, for a log or a row."""


class ProgramMissing(ProgramError):
    """No such program (not on PATH, or the path names no executable file)."""


class ProgramTimeout(ProgramError):
    """The program did not finish in time; it and its process group were killed."""


class ProgramFailed(ProgramError):
    """The program exited non-zero (only `output` raises it: `run` returns the exit code)."""

    def __init__(self, message: str, finished: Finished) -> None:
        super().__init__(message)
        self.finished = finished


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()[-ERROR_TAIL:]


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run `argv` to its end; never raises for a non-zero exit.

    `env` is added to the daemon's environment. Raises ProgramMissing, ProgramTimeout, or
    ProgramError when the program cannot be started at all.
    """
    name = argv[0]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        # A missing cwd raises this too: with one given, which of the two is not known.
        kind = ProgramMissing if cwd is None else ProgramError
        raise kind(f"cannot run {name}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise ProgramError(f"cannot run {name}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        await _kill(proc)
        raise ProgramTimeout(f"{name} timed out after {timeout:g}s") from None
    except BaseException:  # cancelled: the caller is gone, the program must go too
        await _kill(proc)
        raise
    assert proc.returncode is not None
    return Finished(proc.returncode, out, err)


async def output(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """The program's stdout; a non-zero exit raises ProgramFailed (with the end of stderr)."""
    finished = await run(argv, timeout=timeout, stdin=stdin, cwd=cwd, env=env)
    if finished.returncode != 0:
        tail = finished.stderr_tail()
        raise ProgramFailed(f"{argv[0]} exited with {finished.returncode}" + (f": {tail}" if tail else ""), finished)
    return finished.stdout


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    # Shielded: a cancelled caller must still reap the child, or it lingers as a zombie.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(proc.wait())
