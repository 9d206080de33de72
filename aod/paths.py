"""Where aod's files live: the config file, the data dir and the daemon's socket.

The hook client runs on every tool call of every agent and shares these rules, so this module is
stdlib only and cheap to import: it computes paths as strings with `os.path` (pathlib costs a
hook about 8 ms of imports) and imports pathlib only inside the public functions that return
`Path`, and tomllib only when a config file that can matter exists.
"""

from __future__ import annotations

import os
import sys

# `typing.TYPE_CHECKING` would import typing (several ms); type checkers honour any constant of this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path
    from typing import Any

__all__ = [
    "SOCKET_NAME",
    "config_file_str",
    "data_dir_str",
    "default_config_path",
    "default_data_dir",
    "default_socket_path",
    "expand_path",
    "read_config",
    "resolve_config_file",
    "resolve_config_path",
    "resolve_runtime_paths",
    "runtime_paths",
    "socket_str",
]

SOCKET_NAME = "aod.sock"
_MACOS_SUPPORT = "Library/Application Support/aod"

# --- platform defaults, as strings --------------------------------------------------------------


def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def _xdg(env: Mapping[str, str], name: str, fallback: str) -> str:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = env.get(name, "")
    return value if os.path.isabs(value) else os.path.join(_home(env), fallback)


def _macos(platform: str) -> bool:
    return platform == "darwin"


def config_file_str(env: Mapping[str, str], platform: str) -> str:
    if _macos(platform):
        return os.path.join(_home(env), _MACOS_SUPPORT, "config.toml")
    return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), "aod", "config.toml")


def data_dir_str(env: Mapping[str, str], platform: str) -> str:
    if _macos(platform):
        return os.path.join(_home(env), _MACOS_SUPPORT)
    return os.path.join(_xdg(env, "XDG_DATA_HOME", ".local/share"), "aod")


def socket_str(data_dir: str, env: Mapping[str, str], platform: str) -> str:
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if not _macos(platform) and os.path.isabs(runtime):
        return os.path.join(runtime, "aod", SOCKET_NAME)
    return os.path.join(data_dir, SOCKET_NAME)


def expand_path(value: str | os.PathLike[str], env: Mapping[str, str], base: str | None = None) -> str:
    """`value` with `~` expanded (by `env`'s HOME) and a relative path joined to `base` (default: cwd)."""
    text = os.fspath(value)
    if text == "~" or text.startswith("~/"):
        return os.path.join(_home(env), text[2:])
    text = os.path.expanduser(text)
    if os.path.isabs(text):
        return text
    # Only now ask for the cwd: it can be gone (an agent's deleted worktree) and absolute paths
    # must keep working there.
    return os.path.join(os.getcwd() if base is None else base, text)


def resolve_config_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str], platform: str
) -> tuple[str, bool]:
    named = path if path is not None and os.fspath(path) else env.get("AOD_CONFIG") or None
    if named is not None:
        return expand_path(named, env), True
    return config_file_str(env, platform), False


# --- the data dir and socket, with their precedence -------------------------------------------------


def _lenient(value: Any, key: str) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def runtime_paths(
    doc: Mapping[str, Any],
    base: str | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    socket: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
    check: Callable[[Any, str], str | None] = _lenient,
) -> tuple[str, str]:
    """(data_dir, socket) from arguments (CLI flags) > AOD_* environment > the file's keys > defaults.

    `doc` is the parsed config file and `base` its directory (a relative path in the file means
    relative to the file: a daemon's cwd is arbitrary). `check` validates a value from the file:
    aod.config raises on a bad one; the default ignores it, for the hook client, which must never fail.
    """

    def pick(arg: str | os.PathLike[str] | None, env_name: str, key: str) -> str | None:
        if arg is not None and os.fspath(arg):
            return expand_path(arg, env)
        if env.get(env_name):
            return expand_path(env[env_name], env)
        if key in doc:
            value = check(doc[key], key)
            if value is not None:
                return expand_path(value, env, base)
        return None

    socket_path = pick(socket, "AOD_SOCKET", "socket")
    chosen_dir = pick(data_dir, "AOD_DATA_DIR", "data_dir")
    data = chosen_dir or data_dir_str(env, platform)
    if socket_path is None:
        # The shared runtime-dir socket belongs to the default data dir only: a daemon on another
        # data dir (a test, a second instance) must not answer for, or collide with, the default one.
        socket_path = socket_str(data, env, platform) if chosen_dir is None else os.path.join(data, SOCKET_NAME)
    return data, socket_path


def _may_set(data: bytes, keys: Iterable[str]) -> bool:
    # Without \u or \U escapes (TOML 1.0 has no other way to spell a letter in a key), a key can
    # only be set by a file whose bytes contain its name. Skipping tomllib then saves a hook
    # about 20 ms of imports for the usual config file, which sets neither path.
    if b"\\u" in data or b"\\U" in data:
        return True
    return any(key.encode() in data for key in keys)


def read_config(
    env: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
    *,
    keys: Iterable[str] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The config document and the directory relative paths in it start from; never raises.

    A missing, unreadable or invalid file reads as an empty document (aod.config reports those;
    the hook client must keep working). With `keys`, a file that cannot set any of them is not
    parsed and reads as empty too.
    """
    try:
        file, _ = resolve_config_file(None, env, platform)
        with open(file, "rb") as f:
            data = f.read()
        if keys is not None and not _may_set(data, keys):
            return {}, None
        import tomllib

        return tomllib.loads(data.decode("utf-8")), os.path.dirname(file)
    except Exception:
        return {}, None


# --- the public Path API ------------------------------------------------------------------------


def default_config_path(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path:
    from pathlib import Path

    return Path(config_file_str(env, platform))


def default_data_dir(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path:
    from pathlib import Path

    return Path(data_dir_str(env, platform))


def default_socket_path(
    data_dir: str | os.PathLike[str], env: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> Path:
    from pathlib import Path

    return Path(socket_str(os.fspath(data_dir), env, platform))


def resolve_config_path(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
) -> tuple[Path, bool]:
    """The config file to read and whether it was named explicitly (which makes it mandatory).

    A config watcher needs this even when the file does not exist yet, to notice its creation.
    """
    from pathlib import Path

    file, explicit = resolve_config_file(path, env, platform)
    return Path(file), explicit


def resolve_runtime_paths(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> tuple[Path, Path]:
    """(data_dir, socket) as `aod.config.load_config(env=env)` would choose them, without raising."""
    from pathlib import Path

    doc, base = read_config(env, platform, keys=("data_dir", "socket"))
    data_dir, socket = runtime_paths(doc, base, env=env, platform=platform)
    return Path(data_dir), Path(socket)
