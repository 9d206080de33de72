"""aod.paths: the hook client's data dir and socket are exactly the ones aod.config chooses."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

import aod.config
import aod.paths
from aod.config import ConfigError, load_config
from aod.paths import read_config, resolve_runtime_paths

REPO = Path(__file__).resolve().parent.parent

# Each dimension is a list of env fragments; every combination is checked.
_XDG = [
    {},
    {"XDG_CONFIG_HOME": "{t}/cfg", "XDG_DATA_HOME": "{t}/share", "XDG_RUNTIME_DIR": "{t}/run"},
    {"XDG_CONFIG_HOME": "rel/cfg", "XDG_DATA_HOME": "rel/share", "XDG_RUNTIME_DIR": "rel/run"},
    {"XDG_RUNTIME_DIR": "{t}/run"},
]
_DATA_DIR = [{}, {"AOD_DATA_DIR": "{t}/env-data"}, {"AOD_DATA_DIR": "rel-data"}, {"AOD_DATA_DIR": "~/tilde-data"}, {"AOD_DATA_DIR": ""}]
_SOCKET = [{}, {"AOD_SOCKET": "{t}/env.sock"}, {"AOD_SOCKET": "~/tilde.sock"}, {"AOD_SOCKET": ""}]

# (where the file is, its text): None = no file; "default" = the platform's config path.
_FILES = {
    "no-file": (None, None),
    "both-keys-relative-and-tilde": ("default", 'data_dir = "rel/data"\nsocket = "~/file.sock"\n'),
    "data-dir-only": ("default", 'data_dir = "{t}/file-data"\n'),
    "socket-only-relative": ("default", 'socket = "run/aod.sock"\n'),
    "unrelated-keys": ("default", '[storage]\nreaders = 2\n\n[hook]\ntimeout = "1s"\n'),
    "keys-only-in-values": ("default", '[notifiers.x]\ntype = "command"\ncommand = ["data_dir", "socket"]\n'),
    "escaped-key": ("default", '"data\\u005fdir" = "/escaped/data"\n'),
    "quoted-and-dotted": ("default", '"socket" = "/quoted.sock"\n[hook]\ntimeout = 1\n'),
    "named-by-aod-config": ("named", 'data_dir = "d"\nsocket = "s/aod.sock"\n'),
}


def _fill(fragment: dict[str, str], tmp: Path) -> dict[str, str]:
    return {k: v.replace("{t}", str(tmp)) for k, v in fragment.items()}


def _write_config(tmp: Path, env: dict[str, str], where: str | None, text: str | None, platform: str) -> None:
    if where is None or text is None:
        return
    if where == "named":
        file = tmp / "etc" / "named.toml"
        env["AOD_CONFIG"] = "etc/named.toml"  # relative: to the cwd
    else:
        file = aod.paths.default_config_path(env, platform)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text.replace("{t}", str(tmp)))


@pytest.mark.parametrize("platform", ["linux", "darwin"])
@pytest.mark.parametrize("file_case", list(_FILES))
def test_runtime_paths_equal_load_config_for_every_env_combination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, file_case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    where, text = _FILES[file_case]
    mismatches = []
    combos = list(itertools.product(_XDG, _DATA_DIR, _SOCKET))
    for n, (xdg, data, sock) in enumerate(combos):
        home = tmp_path / f"home{n}"
        env = {"HOME": str(home)} | _fill(xdg, tmp_path) | _fill(data, tmp_path) | _fill(sock, tmp_path)
        _write_config(tmp_path, env, where, text, platform)
        config = load_config(env=env, platform=platform)
        expected = (config.data_dir, config.socket_path)
        got = resolve_runtime_paths(env=env, platform=platform)
        if got != expected:
            mismatches.append((env, got, expected))
    assert len(combos) == 80
    assert mismatches == []


def test_the_socket_default_follows_whether_the_data_dir_was_chosen(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path / "h"), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_CONFIG_HOME": str(tmp_path / "c")}

    default = resolve_runtime_paths(env=base, platform="linux")
    chosen = resolve_runtime_paths(env={**base, "AOD_DATA_DIR": str(tmp_path / "d")}, platform="linux")
    (tmp_path / "c" / "aod").mkdir(parents=True)
    (tmp_path / "c" / "aod" / "config.toml").write_text(f'data_dir = "{tmp_path / "f"}"\n')
    from_file = resolve_runtime_paths(env=base, platform="linux")

    assert default == (tmp_path / "h/.local/share/aod", tmp_path / "run/aod/aod.sock")
    assert chosen == (tmp_path / "d", tmp_path / "d/aod.sock")
    assert from_file == (tmp_path / "f", tmp_path / "f/aod.sock")


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "c.toml").write_text('data_dir = "data"\nsocket = "../run/aod.sock"\n')

    got = resolve_runtime_paths(env={"HOME": str(tmp_path), "AOD_CONFIG": str(tmp_path / "etc/c.toml")})

    assert got[0] == tmp_path / "etc" / "data"
    assert got[1] == tmp_path / "etc" / ".." / "run" / "aod.sock"


@pytest.mark.parametrize(
    ("content", "note"),
    [
        (b"data_dir = = 1\n", "invalid TOML"),
        (b'data_dir = "\xff\xfe"\n', "invalid UTF-8"),
        (b"data_dir = 5\nsocket = true\n", "wrong types"),
        (b'data_dir = ""\n', "empty path"),
        (b'data_dir = "/x"\n[bogus]\nkey = 1\n', "unknown table, which load_config refuses"),
    ],
)
def test_an_invalid_config_file_falls_back_instead_of_raising(tmp_path: Path, content: bytes, note: str) -> None:
    env = {"HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "s")}
    (tmp_path / "c" / "aod").mkdir(parents=True)
    (tmp_path / "c" / "aod" / "config.toml").write_bytes(content)

    with pytest.raises(ConfigError):
        load_config(env=env, platform="linux")
    data_dir, socket = resolve_runtime_paths(env=env, platform="linux")

    # The unknown table makes load_config refuse the file, but its data_dir is still a valid
    # statement of where the data lives: the hook client should follow it.
    expected = Path("/x") if b"/x" in content else tmp_path / "s" / "aod"
    assert (data_dir, socket) == (expected, expected / "aod.sock"), note


def test_a_missing_named_config_or_a_directory_falls_back(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "s")}
    defaults = (tmp_path / "s" / "aod", tmp_path / "s" / "aod" / "aod.sock")

    assert resolve_runtime_paths(env={**env, "AOD_CONFIG": str(tmp_path / "missing.toml")}, platform="linux") == defaults
    assert resolve_runtime_paths(env={**env, "AOD_CONFIG": str(tmp_path)}, platform="linux") == defaults
    assert read_config({**env, "AOD_CONFIG": str(tmp_path)}, "linux") == ({}, None)


def test_read_config_parses_only_a_file_that_can_set_the_keys(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    env = {"HOME": str(tmp_path), "AOD_CONFIG": str(file)}
    file.write_text("[storage]\nreaders = 2\n")

    assert read_config(env, "linux") == ({"storage": {"readers": 2}}, str(tmp_path))
    assert read_config(env, "linux", keys=("data_dir", "socket")) == ({}, None)
    file.write_text('"data\\u005Fdir" = "/d"\n')
    assert read_config(env, "linux", keys=("data_dir",)) == ({"data_dir": "/d"}, str(tmp_path))


def test_config_uses_paths_and_keeps_no_copy_of_the_rules() -> None:
    for name in ("default_config_path", "default_data_dir", "default_socket_path", "resolve_config_path"):
        assert getattr(aod.config, name) is getattr(aod.paths, name)
    leftovers = [name for name in ("_home", "_xdg", "_macos", "_expand") if hasattr(aod.config, name)]
    assert leftovers == []


def test_importing_paths_imports_neither_pathlib_nor_tomllib() -> None:
    code = (
        "import sys; sys.path.append(sys.argv[1]); import aod.paths as p; "
        "p.runtime_paths({}, None, env={'HOME': '/h'}, platform='linux'); "
        "print(sorted(m for m in ('pathlib', 'tomllib', 'typing', 're') if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-S", "-c", code, str(REPO)], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
