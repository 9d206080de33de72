"""Running an external program (gh, git, a notifier command) off the event loop's back.

asyncio subprocesses never block the loop; the timeout kills the whole process group, so a
program that forked helpers (gh spawns git, a shell script spawns curl) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

# Enough of stderr to say what went wrong, never a whole log.
ERROR_TAIL = 500


class ProgramError(RuntimeError):
    """The program could not run, failed, or timed out; `str()` says which, for a log or a row."""


async def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """The program's stdout; ProgramError on a non-zero exit, a timeout, or a missing program."""
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
    except OSError as exc:
        raise ProgramError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        await _kill(proc)
        raise ProgramError(f"{argv[0]} timed out after {timeout:g}s") from None
    except BaseException:
        await _kill(proc)
        raise
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip()[-ERROR_TAIL:]
        raise ProgramError(f"{argv[0]} exited with {proc.returncode}" + (f": {tail}" if tail else ""))
    return out


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    # Shielded: a cancelled caller must still reap the child, or it lingers as a zombie.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(proc.wait())
