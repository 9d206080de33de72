"""Starting an agent in a new detached tmux session, and giving it a git worktree first."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aod import proc
from aod.runtime import tmux

# A spawned agent's terminal: wide enough that a TUI does not wrap every line.
WIDTH, HEIGHT = 200, 50
GIT_TIMEOUT = 60.0
# How long a new agent must stay up before spawn answers. A command that cannot run at all (not
# found, not executable, a bad flag, a script failing at once) is gone within tens of
# milliseconds; 300 ms leaves room for a loaded machine and keeps `aod spawn` quick. An agent
# that fails later is the reaper's to find.
STARTUP_CHECK = 0.3
# A dead pane's exit status, asked again this often at this pace while tmux has not reaped it yet.
STATUS_TRIES = 40
STATUS_WAIT = 0.05
LAST_OUTPUT_LINES = 15
LAST_OUTPUT_CHARS = 2000
# What a shell runs itself (keywords, builtins), without a PATH lookup: `cd sub && claude` can
# only be judged by running it.
SHELL_WORDS = frozenset((
    ".", "alias", "bg", "bind", "break", "builtin", "caller", "case", "cd", "command", "compgen",
    "complete", "compopt", "continue", "coproc", "declare", "dirs", "disown", "do", "done", "elif",
    "else", "enable", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function",
    "getopts", "hash", "help", "history", "if", "in", "jobs", "let", "local", "logout", "mapfile",
    "popd", "pushd", "read", "readarray", "readonly", "return", "select", "set", "shift", "shopt",
    "source", "suspend", "then", "time", "times", "trap", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while",
))
# What starts each agent when `aod spawn --agent NAME` is given no command (each agent's own CLI).
DEFAULT_COMMANDS: dict[str, tuple[str, ...]] = {
    "claude-code": ("claude",),
    "codex": ("codex",),
    "gemini": ("gemini",),
    "cursor": ("cursor-agent",),
    "opencode": ("opencode",),
}
# A word the shell passes on as it is: no quoting, expansion, assignment or redirection in it.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./+-]+")


class SpawnError(RuntimeError):
    """The agent could not be started; the message is worded for the user."""


class CommandNotFound(SpawnError):
    """The program is nowhere tmux would find it: nothing was started."""


class AgentExited(SpawnError):
    """The agent's process was gone right after the start; `output` is what its pane last showed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def program_to_find(command: Sequence[str]) -> str | None:
    """The program tmux will look up for `command`; None when only running it can tell.

    Several arguments are exec'd as they are. One goes through the shell: its first word is
    checked when it is a plain program name or path.
    """
    if len(command) > 1:
        return command[0]
    first = (command[0].split() or [""])[0]
    if not _PLAIN_WORD.fullmatch(first) or first in SHELL_WORDS:
        return None
    return first


def find_program(command: Sequence[str], *, cwd: Path, path: str) -> None:
    """Raise CommandNotFound unless the program of `command` can be run from `cwd` with `path` as
    PATH. Blocking (it stats files): run it in a thread."""
    program = program_to_find(command)
    if program is None:
        return
    if "/" in program:  # a path, relative to where the agent starts
        if shutil.which(str(cwd / program), path=path) is None:
            raise CommandNotFound(f"{program} is no executable file (looked in {cwd})")
    elif shutil.which(program, path=path) is None:
        raise CommandNotFound(f"{program} is not on the daemon's PATH ({path})")


@dataclass(frozen=True)
class SpawnedPane:
    tmux_session: str
    pane_id: str
    pane_pid: int | None


async def start_in_tmux(
    name: str, *, cwd: Path, command: Sequence[str], env: Mapping[str, str], timeout: float = tmux.DEFAULT_TIMEOUT
) -> SpawnedPane:
    """`command` in a new detached tmux session called `name` (or `name-2`, ... if taken).

    One argument runs through the shell (`aod spawn -- "claude --model x"`); several are run
    as they are. `env` is set in the session, so it reaches the agent and its hooks whatever
    environment the tmux server itself was started with.
    """
    options = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    for attempt in range(1, 10):
        session = name if attempt == 1 else f"{name}-{attempt}"
        result = await tmux.run(
            "new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd),
            "-P", "-F", "#{pane_id} #{pane_pid}", *options, "--", *command,
            # In the same tmux call, so before tmux can see the agent exit: a pane that dies at
            # once stays, with its last output, until `_check_alive` has read it.
            ";", "set-option", "-w", "-t", f"={session}:", "remain-on-exit", "on",
            timeout=timeout,
        )
        if result.returncode == 0:
            pane_id, _, pid = result.stdout.strip().partition(" ")
            pane = SpawnedPane(session, pane_id, int(pid) if pid.isdigit() else None)
            await _check_alive(pane, timeout)
            return pane
        if "duplicate session" not in result.stderr:
            raise SpawnError(f"tmux could not start the agent: {result.stderr.strip() or result.returncode}")
    raise SpawnError(f"tmux sessions {name} to {name}-9 all exist already")


async def _check_alive(pane: SpawnedPane, timeout: float) -> None:
    """Raise AgentExited (after removing its tmux session) if the agent is gone STARTUP_CHECK later."""
    await asyncio.sleep(STARTUP_CHECK)
    dead, status = await _dead_status(pane, timeout)
    if not dead:
        # One tmux call: from the unset on, the pane follows the user's remain-on-exit again
        # (removed on exit by default), and one that died just now stays until it is read.
        dead, status = await _dead_status(pane, timeout, "set-option", "-w", "-u", "-t", pane.pane_id,
                                          "remain-on-exit", ";")
        if not dead:
            return
    # tmux marks the pane dead when its terminal closes and learns the exit status when it reaps
    # the process: a read between the two has no status yet (seen under load). Read before the
    # unset, the pane waits for it: with remain-on-exit off, the reaping would remove the pane.
    for _ in range(STATUS_TRIES):
        if status:
            break
        await asyncio.sleep(STATUS_WAIT)
        _, status = await _dead_status(pane, timeout)
    output = await _last_output(pane.pane_id, timeout)
    await tmux.run("kill-session", "-t", f"={pane.tmux_session}", timeout=timeout)
    ms = round(STARTUP_CHECK * 1000)
    raise AgentExited(f"the command exited within {ms} ms (status {status or 'unknown'})", output)


async def _dead_status(pane: SpawnedPane, timeout: float, *before: str) -> tuple[bool, str]:
    """Whether the pane's program exited, and its exit status once tmux knows it ("" before)."""
    result = await tmux.run(*before, "display-message", "-p", "-t", pane.pane_id, "#{pane_dead} #{pane_dead_status}",
                            timeout=timeout)
    if result.returncode != 0:  # killed from outside meanwhile, or the tmux server went away
        raise AgentExited(f"its tmux pane was gone right after the start ({result.stderr.strip()})", "")
    dead, _, status = result.stdout.strip().partition(" ")
    return dead == "1", status


async def _last_output(pane_id: str, timeout: float) -> str:
    result = await tmux.run("capture-pane", "-p", "-J", "-S", f"-{HEIGHT}", "-t", pane_id, timeout=timeout)
    lines = [line.rstrip() for line in result.stdout.splitlines() if line.strip()]
    if lines and lines[-1].startswith("Pane is dead"):  # tmux's own notice, not the agent's
        lines.pop()
    return "\n".join(lines[-LAST_OUTPUT_LINES:])[-LAST_OUTPUT_CHARS:]


def tmux_session_name(session_id: str) -> str:
    # tmux reads '.' and ':' in a target as window and pane separators.
    return "aod-" + re.sub(r"[^A-Za-z0-9_-]", "-", session_id)


def branch_name(session_id: str, name: str | None) -> str:
    label = re.sub(r"[^a-z0-9._-]+", "-", (name or "").lower()).strip("-.") or session_id
    return f"aod/{label}"


async def add_worktree(repo: Path, path: Path, branch: str, *, timeout: float = GIT_TIMEOUT) -> None:
    """`git worktree add -b BRANCH PATH` in `repo`: a new checkout of HEAD on a new branch."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    try:
        done = await proc.run(("git", "-C", str(repo), "worktree", "add", "-b", branch, str(path)), timeout=timeout)
    except proc.ProgramTimeout:
        raise SpawnError(f"git worktree add did not finish within {timeout:g}s") from None
    except proc.ProgramError as exc:
        raise SpawnError(str(exc)) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise SpawnError(f"git worktree add failed: {message or done.returncode}")
