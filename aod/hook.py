"""aod's hook client: hands one agent hook payload to the daemon, or spools it; never fails.

Runs as `aod hook [--agent NAME]` and, as `aod hooks install` writes it, directly as
`python3 -S /abs/path/aod/hook.py [--agent NAME]`. The agent waits for it on every tool call, so
it is stdlib only and imports little: the C halves of json and socket (the Python halves pull
in re and enum: ~10 ms a run), no argparse, uuid, pathlib or http.client, and never aod.config
(dataclasses, tomllib, decimal: ~40 ms). It starts about as fast as `python3 -S -c pass`.

It prints nothing, whatever happens: a SessionStart or UserPromptSubmit hook's stdout goes into
the model's context. It always exits 0: exit code 2 would block the agent's action.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a script (with -S, so not even site-packages): sys.path[0] is aod/ itself, whose
    # modules must not shadow stdlib ones, and which cannot import `aod.paths`. The package root
    # goes last, so it can shadow nothing either. (os and sys were loaded by the interpreter.)
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == _here:
        del sys.path[0]
    sys.path.append(os.path.dirname(_here))

import time  # after the sys.path fix, on purpose

try:
    # The C module behind socket.py: socket.py would add enum/selectors imports (~5 ms a hook).
    import _socket
except ImportError:  # an interpreter without it still has the public module
    import socket as _socket  # type: ignore[no-redef]

# `typing.TYPE_CHECKING` would import typing (several ms); type checkers honour any constant of this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from typing import Any

__all__ = ["DEFAULT_AGENT", "DEFAULT_TIMEOUT", "build_envelope", "is_json_object", "main", "post", "spool", "write_atomically"]

DEFAULT_AGENT = "claude-code"
DEFAULT_TIMEOUT = 0.3
# Claude Code kills an async hook still running when `claude -p` ends (and a synchronous one,
# as older installs wrote, after its timeout): a longer wait for the daemon would leave no time
# to spool, and the event would be lost.
MAX_TIMEOUT = 3.0
# A newer `aod hooks install` may pass options an older client does not know: they are ignored,
# never an error. The global options mean what they mean for every aod command.
_OPTIONS = {"--agent": "", "--socket": "AOD_SOCKET", "--data-dir": "AOD_DATA_DIR", "--config": "AOD_CONFIG"}
_UNITS = (("ms", 0.001), ("us", 1e-6), ("µs", 1e-6), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0))


def main(argv: Sequence[str] | None = None) -> int:
    """`aod hook [--agent NAME] [PAYLOAD]`: the payload (stdin, or the JSON argument) goes to the
    daemon or the spool; exit 0."""
    occurred_at = time.time_ns()
    # The agent, read first: it does not wait for an async hook, and once it has exited (after
    # SessionEnd, say) this process's parent is whoever adopted it.
    agent_pid = os.getppid()
    try:
        _run(sys.argv[1:] if argv is None else list(argv), occurred_at, agent_pid)
    except BaseException:
        # A full disk, an unwritable spool, a bug: the agent must go on regardless, in silence.
        return 0
    return 0


def _run(argv: list[str], occurred_at: int, agent_pid: int) -> None:
    agent, overrides, given = _parse_args(argv)
    env: Mapping[str, str] = {**os.environ, **overrides} if overrides else os.environ
    if given is not None:
        # Codex's `notify` program gets its payload as the last argument, and its stdin is the
        # terminal's: reading it would wait for the user.
        raw = given.encode("utf-8", "surrogateescape")
    else:
        try:
            raw = sys.stdin.buffer.read()
        except (AttributeError, OSError, ValueError):  # no stdin at all, or a closed one
            raw = b""
    envelope, uid = _envelope(raw, agent, env, occurred_at, agent_pid)
    data_dir, socket_path, timeout = _settings(env)
    if not post(envelope, socket_path, timeout):
        _spool(envelope, uid, occurred_at, data_dir)


def _parse_args(argv: list[str]) -> tuple[str, dict[str, str], str | None]:
    """The agent, the environment the options stand for, and a payload given as an argument."""
    agent, overrides, given = DEFAULT_AGENT, {}, None
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if argv[i].lstrip()[:1] == "{":
            given = argv[i]
        elif name in _OPTIONS:
            if not eq:
                if i + 1 == len(argv):
                    break
                i += 1
                value = argv[i]
            if name == "--agent":
                agent = value or DEFAULT_AGENT
            elif value:
                overrides[_OPTIONS[name]] = value
        i += 1
    return agent, overrides, given


# --- the envelope -------------------------------------------------------------------------------


def build_envelope(raw: bytes, agent: str, env: Mapping[str, str]) -> bytes:
    """The JSON envelope (DESIGN §5) for the hook payload `raw`, stamped now with a new uid."""
    return _envelope(raw, agent, env, time.time_ns(), os.getppid())[0]


def _envelope(raw: bytes, agent: str, env: Mapping[str, str], occurred_at: int, agent_pid: int) -> tuple[bytes, str]:
    from aod.uids import uid7  # inside main's safety net, like every aod import here

    uid = uid7(occurred_at)
    # Built by hand: strings through json's own C encoder, ints as digits; key order is fixed.
    head = ['{"uid":"', uid, '","agent":', _json_str(_clean(agent)), ',"occurred_at":', str(occurred_at)]
    if env.get("AOD_SESSION_ID"):
        head += [',"session":', _json_str(_clean(env["AOD_SESSION_ID"]))]
    head.append(',"runtime":{')
    if env.get("TMUX_PANE"):
        head += ['"tmux_pane":', _json_str(_clean(env["TMUX_PANE"])), ","]
    head += ['"pid":', str(agent_pid), '},"payload":']
    # The payload goes last and, when it is a valid object, verbatim: no re-encoding of a
    # payload that can hold whole files, and the daemon stores exactly what the agent sent.
    return b"".join(("".join(head).encode(), _payload(raw), b"}")), uid


def _payload(raw: bytes) -> bytes:
    body = raw.strip(_JSON_SPACE)
    try:
        if is_json_object(body.decode("utf-8")):
            return body
    except ValueError:  # not UTF-8
        pass
    # Not a JSON object: still sent, as text, so the daemon dead-letters it instead of it vanishing.
    return _json_str(raw.decode("utf-8", "replace")).encode()


def is_json_object(text: str) -> bool:
    """Whether `text` is one JSON object, as `json.loads` reads it, NaN and Infinity refused."""
    start = len(text) - len(text.lstrip(_JSON_SPACE_STR))
    if text[start : start + 1] != "{":
        return False
    try:
        _, end = _scan_once(text, start)
    except (ValueError, StopIteration, RecursionError):  # bad JSON, nothing at all, absurd nesting
        return False
    return not text[end:].strip(_JSON_SPACE_STR)


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON; spliced into the envelope verbatim
    # they would make the daemon refuse the whole envelope, so such a payload travels as text.
    raise ValueError(name)


class _StrictJSON:
    # The settings json.JSONDecoder hands its C scanner, minus NaN and Infinity.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self) -> None:
        self.parse_constant = _reject_constant  # an instance attribute, so not a bound method


_JSON_SPACE = b" \t\n\r"  # JSON's whitespace; bytes.strip() would take \v and \f too
_JSON_SPACE_STR = _JSON_SPACE.decode()
_scan_once: Callable[[str, int], tuple[Any, int]]
_json_str: Callable[[str], str]
try:
    # json's C accelerator is the same parser and encoder json.loads/dumps use on CPython, without
    # the Python module's import of re (half of this client's start-up time).
    import _json

    # typeshed types make_scanner's argument as a make_scanner; the C function takes any object
    # carrying a decoder's settings, as json.decoder passes it.
    _scan_once = _json.make_scanner(_StrictJSON())  # type: ignore[arg-type]
    _json_str = _json.encode_basestring_ascii
except (ImportError, AttributeError):  # another interpreter: the public module does the same
    import json

    # scan_once is set in JSONDecoder.__init__, which typeshed does not declare.
    _scan_once = json.JSONDecoder(parse_constant=_reject_constant).scan_once  # type: ignore[attr-defined]
    _json_str = json.dumps


def _clean(text: str) -> str:
    # Undecodable bytes in the environment arrive as lone surrogates, which no JSON parser takes.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# --- where to, and how long to wait -------------------------------------------------------------


def _settings(env: Mapping[str, str]) -> tuple[str, str, float]:
    # Imported here, inside main's safety net: even a broken install must not print a traceback.
    from aod import paths

    doc: Mapping[str, Any] = {}
    try:
        doc, base = paths.read_config(env, sys.platform, keys=("data_dir", "socket", "timeout"))
        data_dir, socket_path = paths.runtime_paths(doc, base, env=env, platform=sys.platform)
    except Exception:  # e.g. a relative path in AOD_DATA_DIR while the cwd is gone
        data_dir = paths.data_dir_str(env, sys.platform)
        socket_path = paths.socket_str(data_dir, env, sys.platform)
    hook = doc.get("hook")
    for value in (env.get("AOD_HOOK_TIMEOUT"), hook.get("timeout") if isinstance(hook, dict) else None):
        seconds = _seconds(value)
        if seconds is not None:
            return data_dir, socket_path, min(seconds, MAX_TIMEOUT)
    return data_dir, socket_path, DEFAULT_TIMEOUT


def _seconds(value: object) -> float | None:
    """A positive duration: seconds as a number, or text like "500ms" or "1.5s" (as in the config)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text, factor = value.strip().lower(), 1.0
        for unit, unit_factor in _UNITS:
            if text.endswith(unit):
                text, factor = text[: -len(unit)], unit_factor
                break
        try:
            seconds = float(text.strip()) * factor
        except ValueError:
            return None
    else:
        return None
    return seconds if 0 < seconds < float("inf") else None


# --- delivery -----------------------------------------------------------------------------------


def post(envelope: bytes, socket_path: str | os.PathLike[str], timeout: float) -> bool:
    """POST the envelope to the daemon's `/v1/events` on its Unix socket, all within `timeout` s.

    True when the daemon took responsibility for it: stored (2xx), or refused and dead-lettered
    itself (4xx). False means nobody has it: no daemon, a timeout, 5xx or 503, a garbled answer.
    """
    deadline = time.monotonic() + timeout
    request = b"".join(
        (
            b"POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n",
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(envelope),
            envelope,
        )
    )
    answer = b""
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            _wait_at_most(sock, deadline)
            sock.connect(os.fspath(socket_path))
            _wait_at_most(sock, deadline)
            sock.sendall(request)
            # The status line is the answer: 202 is sent only after the commit, so the rest of
            # the response is not worth waiting for.
            while b"\r\n" not in answer and len(answer) < 4096:
                _wait_at_most(sock, deadline)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        finally:
            sock.close()
    except Exception:
        return False
    return _taken(answer)


def _wait_at_most(sock: Any, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)


def _taken(answer: bytes) -> bool:
    # Only a whole status line counts: a cut-off one proves nothing, and spooling an envelope
    # the daemon did store costs nothing (it stores a resent uid once).
    line, crlf, _ = answer.partition(b"\r\n")
    parts = line.split(None, 2)
    if not crlf or len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return False
    status = int(parts[1])
    # 408 and 429 refuse the request without keeping it: the spool will deliver it later.
    return 200 <= status < 300 or (400 <= status < 500 and status not in (408, 429))


def spool(envelope: bytes, uid: str, occurred_at: int, data_dir: str | os.PathLike[str]) -> Path:
    """Write the envelope as `<data_dir>/spool/<occurred_at>-<uid>.json`, atomically and durably.

    The daemon reads only complete `*.json` files: the bytes go to a dotted temp file first, are
    fsynced, and only then renamed into place.
    """
    from pathlib import Path

    return Path(_spool(envelope, uid, occurred_at, data_dir))


def _spool(envelope: bytes, uid: str, occurred_at: int, data_dir: str | os.PathLike[str]) -> str:
    # Strings only: the client itself never pays for importing pathlib.
    directory = os.path.join(os.fspath(data_dir), "spool")
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        # makedirs' mode applies to the last directory only: the data dir is ours (0700), its
        # parents (~/.local/share) are not, and keep the usual mode.
        os.makedirs(os.fspath(data_dir), 0o700, exist_ok=True)
        os.makedirs(directory, 0o700, exist_ok=True)
    final = os.path.join(directory, f"{occurred_at}-{uid}.json")
    write_atomically(final, os.path.join(directory, f".{uid}.tmp"), envelope)
    _fsync_dir(directory)
    return final


def write_atomically(final: str, temp: str, data: bytes, mode: int = 0o600) -> None:
    """`final` holds all of `data` or is untouched: written to `temp`, fsynced, then renamed.

    `temp` must be in the same directory and start with a dot, so no reader takes it for done.
    """
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            if mode != 0o600:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        _discard(temp)
        raise


def _discard(path: str) -> None:
    # contextlib.suppress would cost an import on every hook run, for a path taken almost never.
    try:
        os.unlink(path)
    except OSError:
        return


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; some filesystems cannot fsync a directory, and the file
    # is in place regardless.
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
