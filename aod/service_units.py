"""The service files of one installation: the templates in aod/packaging/, filled in and stamped.

The templates ship as package data, so an installed wheel renders the same files as a checkout
(the top-level `packaging/` is a link to them). Rendering substitutes `@NAME@` values, escaped
for the file's syntax; the plist goes through plistlib, so no value can break its XML.

Every rendered file carries a stamp: a comment with the sha256 of the rest of the file. A file
whose stamp still matches is exactly what `aod service install` wrote; one that was edited (or
was never aod's) is left alone by uninstall and install unless forced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

# Every `aod` command builds the parser that imports this module: the heavier imports (plistlib,
# importlib.resources, socket, hashlib) wait for the functions that need them.

__all__ = [
    "LAUNCHD_LABEL",
    "Installation",
    "Stamp",
    "judge",
    "render_launchd",
    "render_systemd",
    "unit_dir",
]

LAUNCHD_LABEL = "local.aod"
SYSTEMD_UNITS = ("aod.socket", "aod.service")
_STAMP = re.compile(r"aod-service sha256=([0-9a-f]{64})")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


@dataclass(frozen=True)
class Installation:
    """What a unit needs to know about this aod: all absolute, as resolved at install time."""

    python: str
    data_dir: Path
    socket_path: Path
    config_file: Path | None  # only when named (--config / AOD_CONFIG); else the daemon finds the default
    tcp: str  # server.tcp; "" = none
    path: str  # the PATH the agents, tmux, git and gh are found on
    log_file: Path  # launchd only: where the daemon's stdout and stderr go

    def serve_argv(self) -> list[str]:
        # The socket is named too: with --data-dir alone the daemon would put it in the data dir.
        argv = [self.python, "-m", "aod.cli.main", "serve", "--data-dir", str(self.data_dir),
                "--socket", str(self.socket_path)]
        if self.config_file is not None:
            argv += ["--config", str(self.config_file)]
        return argv


class Stamp(Enum):
    MISSING = "not installed"
    OURS = "installed by aod"
    EDITED = "installed by aod, edited since"
    FOREIGN = "not written by aod"


def unit_dir(kind: str, env: dict[str, str] | os._Environ[str]) -> Path:
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    if kind == "launchd":
        return home / "Library" / "LaunchAgents"
    config = env.get("XDG_CONFIG_HOME", "")
    return (Path(config) if os.path.isabs(config) else home / ".config") / "systemd" / "user"


def _template(*parts: str) -> str:
    from importlib import resources

    return resources.files("aod").joinpath("packaging", *parts).read_text(encoding="utf-8")


# --- systemd ------------------------------------------------------------------------------------


def _unit_value(text: str, expands_dollar: bool = True) -> str:
    """A word of a unit file: quoted, C escapes and `%` specifiers disabled, and `$` where it would expand."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (escaped.replace("$", "$$") if expands_dollar else escaped) + '"'


def _tcp_listen(address: str) -> str:
    import socket

    if not address:
        return "# no TCP address: server.tcp is empty"
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    # systemd takes an address, not a name: resolve "localhost" the way aod's own bind would.
    family, _, _, _, sockaddr = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM,
                                                   flags=socket.AI_PASSIVE)[0]
    ip = f"[{sockaddr[0]}]" if family == socket.AF_INET6 else sockaddr[0]
    return f"ListenStream={ip}:{int(port)}"  # the port getaddrinfo answers is the one it was given


def render_systemd(inst: Installation) -> dict[str, str]:
    """File name -> stamped text, for aod.socket and aod.service."""
    values = {
        "EXEC_START": " ".join(_unit_value(arg) for arg in inst.serve_argv()),
        "PATH": _unit_value(f"PATH={inst.path}", expands_dollar=False),
        "UNIX_SOCKET": str(inst.socket_path).replace("%", "%%"),
        "TCP_LISTEN": _tcp_listen(inst.tcp),
    }
    files = {}
    for name in SYSTEMD_UNITS:
        text = _PLACEHOLDER.sub(lambda m: values[m[0].strip("@")], _template("systemd", name))
        files[name] = _stamp(text, lambda digest: f"# {_stamp_text(digest)}\n", at_line=0)
    return files


# --- launchd ------------------------------------------------------------------------------------


def render_launchd(inst: Installation) -> dict[str, str]:
    import plistlib

    values: dict[str, Any] = {"@LOG_FILE@": str(inst.log_file), "@PATH@": inst.path}

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [item for value in node
                    for item in (inst.serve_argv() if value == "@ARGS@" else [fill(value)])]
        return values.get(node, node) if isinstance(node, str) else node

    plist = fill(plistlib.loads(_template("launchd", f"{LAUNCHD_LABEL}.plist").encode()))
    text = plistlib.dumps(plist, sort_keys=False).decode()
    # The stamp goes after the XML declaration, which must stay the first line.
    stamped = _stamp(text, lambda digest: f"<!-- {_stamp_text(digest)} -->\n", at_line=1)
    return {f"{LAUNCHD_LABEL}.plist": stamped}


# --- the stamp ----------------------------------------------------------------------------------


def _stamp_text(digest: str) -> str:
    # No "--" in it: the plist's copy is an XML comment.
    return (f"aod-service sha256={digest}: written by `aod service install`, which replaces and"
            " uninstall removes it only while it is unedited (unless forced)")


def _digest(lines: list[str]) -> str:
    import hashlib

    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _stamp(text: str, line: Any, at_line: int) -> str:
    left = _PLACEHOLDER.search(text)
    assert left is None, f"template placeholder {left[0]} has no value"
    lines = text.splitlines(keepends=True)
    lines.insert(at_line, line(_digest(lines)))
    return "".join(lines)


def judge(text: str | None) -> Stamp:
    """Whether a file on disk is what aod wrote, edited since, or someone else's."""
    if text is None:
        return Stamp.MISSING
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines[:2]):
        match = _STAMP.search(line)
        if match:
            return Stamp.OURS if _digest(lines[:i] + lines[i + 1:]) == match[1] else Stamp.EDITED
    return Stamp.FOREIGN
