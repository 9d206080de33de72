"""Running the tmux command (through `aod.proc`): with a timeout, so a hung tmux never blocks the loop.

Every call resolves `tmux` on PATH anew and talks to the server the environment names
(TMUX_TMPDIR, or TMUX when the daemon itself runs inside tmux), the same one the user's shells use.
"""

from __future__ import annotations

from dataclasses import dataclass

from aod import proc

TMUX = "tmux"
DEFAULT_TIMEOUT = 5.0
# tmux's words when its server is not there: none listens on the socket, or it exited while
# answering (right after kill-server). Either way none of its panes exists any more; any other
# failure to connect (permissions, a hung server) says nothing about them.
_SERVER_GONE = ("no server running on", "server exited unexpectedly")


class TmuxError(RuntimeError):
    """tmux could not do what was asked; the message says why, in tmux's words where it has some."""


class TmuxMissing(TmuxError):
    """No tmux binary on PATH."""


class TmuxTimeout(TmuxError):
    """tmux did not answer in time (it was killed)."""


class TmuxFailed(TmuxError):
    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"tmux {args[0] if args else ''} failed ({returncode}): {self.stderr or 'no message'}")


@dataclass(frozen=True)
class TmuxResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def server_gone(self) -> bool:
        return self.returncode != 0 and any(words in self.stderr for words in _SERVER_GONE)


async def run(*args: str, stdin: bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> TmuxResult:
    """`tmux ARGS...`; raises TmuxMissing or TmuxTimeout, never for a non-zero exit."""
    try:
        done = await proc.run((TMUX, *args), stdin=stdin, timeout=timeout)
    except proc.ProgramMissing:
        raise TmuxMissing("tmux is not installed (not found on PATH)") from None
    except proc.ProgramTimeout:
        raise TmuxTimeout(f"tmux {args[0] if args else ''} did not answer within {timeout:g}s") from None
    except proc.ProgramError as exc:
        raise TmuxError(str(exc)) from None
    return TmuxResult(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


async def check(*args: str, stdin: bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """`tmux ARGS...`'s stdout; a non-zero exit raises TmuxFailed."""
    result = await run(*args, stdin=stdin, timeout=timeout)
    if result.returncode != 0:
        raise TmuxFailed(args, result.returncode, result.stderr)
    return result.stdout
