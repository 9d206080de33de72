"""Config: defaults, the file, precedence of flags/env/file, platform dirs, and error messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aod.config import (
    REACTION_KEYS,
    Config,
    ConfigError,
    HookConfig,
    IngestConfig,
    LifecycleConfig,
    ReactionConfig,
    ReaperConfig,
    RetentionConfig,
    ScmConfig,
    ServerConfig,
    StorageConfig,
    StreamConfig,
    default_config_path,
    default_data_dir,
    default_socket_path,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
    resolve_config_path,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment that cannot see the real user's files."""
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "share"),
    }


@pytest.fixture
def config_file(env: dict[str, str]) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "aod" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str]) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path, env=env, platform="linux")


def error_for(tmp_path: Path, text: str, env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, env)
    return str(info.value)


# --- defaults and the file ----------------------------------------------------------------------


def test_defaults_without_a_config_file(env: dict[str, str], tmp_path: Path) -> None:
    config = load_config(env=env, platform="linux")

    assert config.config_path is None
    assert config.data_dir == tmp_path / "share" / "aod"
    assert config.db_path == tmp_path / "share" / "aod" / "aod.db"
    assert config.socket_path == tmp_path / "share" / "aod" / "aod.sock"
    assert config.server == ServerConfig(tcp="127.0.0.1:8765", log_level="info")
    assert config.storage == StorageConfig(synchronous="normal", readers=4, batch_max=512, batch_wait=0.0002)
    assert config.ingest == IngestConfig(
        max_payload_bytes=65536, max_body_bytes=16 * 1024 * 1024, dedup_window=5.0
    )
    assert config.hook.timeout == 0.3
    assert config.reaper.interval == 60.0
    assert config.lifecycle.stuck_after == 600.0
    assert config.scm == ScmConfig(interval=60.0, gh="gh", max_concurrent=4)
    assert config.stream == StreamConfig(ping_interval=15.0, queue_size=1000)
    assert config.retention == RetentionConfig(events_days=30, change_log_days=7, batch_size=500)
    assert dict(config.notifiers) == {}
    assert dict(config.routing) == {"urgent": (), "action": (), "info": ()}


def test_default_reactions() -> None:
    reactions = parse_config({}).reactions

    assert tuple(reactions) == REACTION_KEYS
    assert set(REACTION_KEYS) == {
        "ci-failed",
        "changes-requested",
        "needs-input",
        "stuck",
        "approved-and-green",
        "exited",
        "merged",
    }
    ci = reactions["ci-failed"]
    assert (ci.action, ci.retries, ci.escalate_after, ci.priority) == ("send-to-agent", 2, 1800.0, "urgent")
    assert "CI" in ci.message
    changes = reactions["changes-requested"]
    assert (changes.action, changes.retries, changes.escalate_after, changes.priority) == (
        "send-to-agent",
        2,
        3600.0,
        "action",
    )
    assert (reactions["needs-input"].action, reactions["needs-input"].priority) == ("notify", "urgent")
    assert (reactions["stuck"].action, reactions["stuck"].escalate_after) == ("notify", 600.0)
    for key in ("approved-and-green", "exited", "merged"):
        assert (reactions[key].action, reactions[key].priority) == ("notify", "info")
    assert all(r.enabled and r.message for r in reactions.values())


def test_a_full_file_overrides_every_table(tmp_path: Path, env: dict[str, str]) -> None:
    config = load_text(
        tmp_path,
        """
data_dir = "/srv/aod"
socket = "/run/aod.sock"

[server]
tcp = ""
log_level = "DEBUG"

[storage]
synchronous = "full"
readers = 8
batch_max = 100
batch_wait = "1ms"

[ingest]
max_payload_bytes = "128KiB"
max_body_bytes = "1MB"
dedup_window = 0

[hook]
timeout = "500ms"

[reaper]
interval = 2

[lifecycle]
stuck_after = "10m"

[scm]
interval = "2m"
gh = "/opt/bin/gh"
max_concurrent = 2

[stream]
ping_interval = "30s"
queue_size = 50

[retention]
events_days = 90
change_log_days = 0.5
batch_size = 1000

[reactions.merged]
enabled = false

[notifiers.pager]
type = "command"
command = ["/usr/local/bin/page-me", "--json"]

[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:9000/aod"
timeout = "2s"

[notifiers.desk]
type = "desktop"

[routing]
urgent = ["pager", "hook"]
action = ["hook"]
info = []
""",
        env,
    )

    assert config.config_path == tmp_path / "config.toml"
    assert config.data_dir == Path("/srv/aod")
    assert config.socket_path == Path("/run/aod.sock")
    assert config.server == ServerConfig(tcp="", log_level="debug")
    assert config.storage == StorageConfig(synchronous="full", readers=8, batch_max=100, batch_wait=0.001)
    assert config.ingest == IngestConfig(max_payload_bytes=131072, max_body_bytes=1_000_000, dedup_window=0.0)
    assert config.hook == HookConfig(timeout=0.5)
    assert config.reaper == ReaperConfig(interval=2.0)
    assert config.lifecycle == LifecycleConfig(stuck_after=600.0)
    assert config.scm == ScmConfig(interval=120.0, gh="/opt/bin/gh", max_concurrent=2)
    assert config.stream == StreamConfig(ping_interval=30.0, queue_size=50)
    assert config.retention == RetentionConfig(events_days=90, change_log_days=0.5, batch_size=1000)
    assert config.reactions["merged"].enabled is False
    assert config.notifiers["pager"].command == ("/usr/local/bin/page-me", "--json")
    assert config.notifiers["pager"].name == "pager"
    assert (config.notifiers["hook"].url, config.notifiers["hook"].timeout) == (
        "http://127.0.0.1:9000/aod",
        2.0,
    )
    assert config.notifiers["desk"].type == "desktop"
    assert dict(config.routing) == {"urgent": ("pager", "hook"), "action": ("hook",), "info": ()}


def test_the_default_file_location_is_read(config_file: Path, env: dict[str, str]) -> None:
    config_file.write_text("[storage]\nreaders = 2\n")

    config = load_config(env=env, platform="linux")

    assert config.config_path == config_file
    assert config.storage.readers == 2


def test_reaction_override_changes_only_the_fields_it_sets() -> None:
    config = parse_config('[reactions.ci-failed]\nretries = 5\nescalate_after = "never"\n')

    ci = config.reactions["ci-failed"]
    default = parse_config({}).reactions["ci-failed"]
    assert (ci.retries, ci.escalate_after) == (5, None)
    assert ci == dataclasses.replace(default, retries=5, escalate_after=None)
    assert config.reactions["stuck"] == parse_config({}).reactions["stuck"]


def test_config_is_immutable() -> None:
    config = parse_config({})

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.storage.readers = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.reactions["ci-failed"] = ReactionConfig()  # type: ignore[index]


# --- precedence ---------------------------------------------------------------------------------


def test_precedence_of_flags_env_file_and_default(tmp_path: Path, env: dict[str, str]) -> None:
    file = tmp_path / "config.toml"
    file.write_text('data_dir = "/from/file"\nsocket = "/from/file.sock"\n')

    from_file = load_config(file, env=env, platform="linux")
    env_over = {**env, "AOD_DATA_DIR": "/from/env", "AOD_SOCKET": "/from/env.sock"}
    from_env = load_config(file, env=env_over, platform="linux")
    from_args = load_config(
        file, data_dir="/from/arg", socket="/from/arg.sock", env=env_over, platform="linux"
    )

    assert (from_file.data_dir, from_file.socket_path) == (Path("/from/file"), Path("/from/file.sock"))
    assert (from_env.data_dir, from_env.socket_path) == (Path("/from/env"), Path("/from/env.sock"))
    assert (from_args.data_dir, from_args.socket_path) == (Path("/from/arg"), Path("/from/arg.sock"))


def test_config_path_from_arg_beats_aod_config(tmp_path: Path, env: dict[str, str]) -> None:
    by_env = tmp_path / "env.toml"
    by_env.write_text("[storage]\nreaders = 2\n")
    by_arg = tmp_path / "arg.toml"
    by_arg.write_text("[storage]\nreaders = 3\n")

    assert load_config(env={**env, "AOD_CONFIG": str(by_env)}, platform="linux").storage.readers == 2
    config = load_config(by_arg, env={**env, "AOD_CONFIG": str(by_env)}, platform="linux")
    assert (config.config_path, config.storage.readers) == (by_arg, 3)


def test_paths_expand_home_and_file_paths_are_relative_to_the_file(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "etc").mkdir()
    file = tmp_path / "etc" / "config.toml"
    file.write_text('data_dir = "~/aod-data"\nsocket = "run/aod.sock"\n')

    config = load_config(file, env=env, platform="linux")

    assert config.data_dir == Path(env["HOME"]) / "aod-data"
    assert config.socket_path == tmp_path / "etc" / "run" / "aod.sock"
    assert load_config(file, data_dir="~", env=env, platform="linux").data_dir == Path(env["HOME"])


def test_empty_env_values_count_as_unset(env: dict[str, str], tmp_path: Path) -> None:
    config = load_config(
        env={**env, "AOD_DATA_DIR": "", "AOD_CONFIG": "", "AOD_SOCKET": ""}, platform="linux"
    )

    assert config.data_dir == tmp_path / "share" / "aod"
    assert config.config_path is None


# --- platform dirs ------------------------------------------------------------------------------


def test_linux_dirs_follow_xdg() -> None:
    env = {
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/xc",
        "XDG_DATA_HOME": "/xd",
        "XDG_RUNTIME_DIR": "/run/user/1",
    }

    assert default_config_path(env, "linux") == Path("/xc/aod/config.toml")
    assert default_data_dir(env, "linux") == Path("/xd/aod")
    assert default_socket_path(Path("/xd/aod"), env, "linux") == Path("/run/user/1/aod/aod.sock")


def test_linux_dirs_without_xdg_fall_back_to_home() -> None:
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "relative/is/ignored"}

    assert default_config_path(env, "linux") == Path("/home/u/.config/aod/config.toml")
    assert default_data_dir(env, "linux") == Path("/home/u/.local/share/aod")
    assert default_socket_path(Path("/home/u/.local/share/aod"), env, "linux") == Path(
        "/home/u/.local/share/aod/aod.sock"
    )


def test_macos_dirs_ignore_xdg() -> None:
    env = {"HOME": "/Users/u", "XDG_CONFIG_HOME": "/xc", "XDG_DATA_HOME": "/xd", "XDG_RUNTIME_DIR": "/r"}
    support = Path("/Users/u/Library/Application Support/aod")

    assert default_config_path(env, "darwin") == support / "config.toml"
    assert default_data_dir(env, "darwin") == support
    assert default_socket_path(support, env, "darwin") == support / "aod.sock"
    config = load_config(env=env, platform="darwin")
    assert (config.data_dir, config.socket_path) == (support, support / "aod.sock")


def test_runtime_dir_socket_only_for_the_default_data_dir(tmp_path: Path, env: dict[str, str]) -> None:
    env = {**env, "XDG_RUNTIME_DIR": str(tmp_path / "run")}

    default = load_config(env=env, platform="linux")
    other = load_config(data_dir=tmp_path / "other", env=env, platform="linux")

    assert default.socket_path == tmp_path / "run" / "aod" / "aod.sock"
    assert other.socket_path == tmp_path / "other" / "aod.sock"


def test_resolve_config_path_reports_whether_it_was_named(tmp_path: Path, env: dict[str, str]) -> None:
    assert resolve_config_path(env=env, platform="linux") == (
        Path(env["XDG_CONFIG_HOME"]) / "aod/config.toml",
        False,
    )
    assert resolve_config_path(tmp_path / "c.toml", env=env, platform="linux") == (tmp_path / "c.toml", True)
    assert resolve_config_path(env={**env, "AOD_CONFIG": "/e.toml"}, platform="linux") == (
        Path("/e.toml"),
        True,
    )


# --- durations and sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0, 0.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("250us", 0.00025),
        ("0.2ms", 0.0002),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        (" 5 s ", 5.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, "x.y") == seconds


@pytest.mark.parametrize(
    "value", [True, -1, -0.5, "-1s", "abc", "10x", "", "1.2.3s", float("nan"), None, [1]]
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^hook\.timeout: expected a duration"):
        parse_duration(value, "hook.timeout")


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (100, 100),
        ("100", 100),
        ("100B", 100),
        ("64KiB", 65536),
        ("64KB", 64000),
        ("16MiB", 16 * 1024 * 1024),
        ("2MB", 2_000_000),
        ("1GiB", 1024**3),
        ("1.5KiB", 1536),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value, "x.y") == size


@pytest.mark.parametrize("value", [True, -1, 1.5, "lots", "10XB", "0.5B", "", None])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^ingest\.max_body_bytes: expected a size"):
        parse_size(value, "ingest.max_body_bytes")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected", "got"),
    [
        ('[storage]\nreaders = "four"', "storage.readers", "an integer from 1 to 64", '"four" (str)'),
        ("[storage]\nreaders = 0", "storage.readers", "an integer from 1 to 64", "0 (int)"),
        ("[storage]\nreaders = 4.0", "storage.readers", "an integer", "4.0 (float)"),
        ("[storage]\nbatch_max = true", "storage.batch_max", "an integer", "true (bool)"),
        ('[storage]\nsynchronous = "off"', "storage.synchronous", '"normal", "full"', '"off" (str)'),
        ('[storage]\nbatch_wait = "10ms"', "storage.batch_wait", "a duration below 0.01s", '"10ms"'),
        ('[storage]\nbatch_wait = "soon"', "storage.batch_wait", "a duration", '"soon" (str)'),
        ('[server]\ntcp = "localhost"', "server.tcp", '"host:port"', '"localhost" (str)'),
        ('[server]\ntcp = "127.0.0.1:70000"', "server.tcp", "port from 0 to 65535", "70000"),
        ('[server]\ntcp = "::1:80"', "server.tcp", '"host:port"', "::1:80"),
        ('[server]\nlog_level = "loud"', "server.log_level", '"debug", "info", "warning", "error"', "loud"),
        ("[server]\ntcp = 8765", "server.tcp", '"host:port"', "8765 (int)"),
        ('[ingest]\nmax_body_bytes = "big"', "ingest.max_body_bytes", "a size", '"big" (str)'),
        ("[ingest]\nmax_payload_bytes = 0", "ingest.max_payload_bytes", "at least 1 byte", "0 (int)"),
        ("[ingest]\ndedup_window = -1", "ingest.dedup_window", "a duration", "-1 (int)"),
        ('[reaper]\ninterval = "0s"', "reaper.interval", "a duration > 0", '"0s"'),
        ('[scm]\ngh = ""', "scm.gh", "a non-empty string", '"" (str)'),
        ("[stream]\nqueue_size = -5", "stream.queue_size", "an integer from 1", "-5 (int)"),
        ('[retention]\nevents_days = "30d"', "retention.events_days", "a number > 0", '"30d" (str)'),
        ("[reactions.stuck]\nenabled = 1", "reactions.stuck.enabled", "true or false", "1 (int)"),
        ('[reactions.stuck]\naction = "page"', "reactions.stuck.action", '"send-to-agent", "notify"', "page"),
        (
            '[reactions.stuck]\npriority = "p1"',
            "reactions.stuck.priority",
            '"urgent", "action", "info"',
            "p1",
        ),
        ("[reactions.stuck]\nescalate_after = 0", "reactions.stuck.escalate_after", '"never"', "0 (int)"),
        ("[reactions.stuck]\nretries = -1", "reactions.stuck.retries", "an integer from 0", "-1 (int)"),
        ('[notifiers.p]\ntype = "sms"', "notifiers.p.type", '"command", "webhook", "desktop"', '"sms"'),
        ('[notifiers.p]\ntype = "command"', "notifiers.p.command", "a non-empty array of strings", "nothing"),
        (
            '[notifiers.p]\ntype = "command"\ncommand = []',
            "notifiers.p.command",
            "non-empty array",
            "[] (array)",
        ),
        ('[notifiers.p]\ntype = "command"\ncommand = [1]', "notifiers.p.command", "array of strings", "[1]"),
        ('[notifiers.p]\ntype = "webhook"', "notifiers.p.url", "an http:// or https:// URL", "nothing"),
        ('[notifiers.p]\ntype = "webhook"\nurl = "ftp://h/x"', "notifiers.p.url", "http://", '"ftp://h/x"'),
        ("[notifiers.p]\nurl = 'http://h'", "notifiers.p.type", "one of", "nothing"),
        ("[routing]\nurgent = 'pager'", "routing.urgent", "an array of strings", '"pager" (str)'),
        ("storage = 3", "storage", "a table", "3 (int)"),
        ("data_dir = 5", "data_dir", "a non-empty string", "5 (int)"),
    ],
)
def test_invalid_values_name_file_key_expectation_and_value(
    tmp_path: Path, env: dict[str, str], text: str, key: str, expected: str, got: str
) -> None:
    message = error_for(tmp_path, text, env)

    assert message.startswith(f"{tmp_path / 'config.toml'}: {key}: expected ")
    assert expected in message
    assert got in message.split(", got ", 1)[1]


def test_error_attributes(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, "[storage]\nreaders = 99", env)

    assert info.value.key == "storage.readers"
    assert info.value.source == str(tmp_path / "config.toml")
    assert isinstance(info.value, ValueError)


def test_errors_without_a_file_name_only_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"storage": {"readers": "four"}})

    assert str(info.value) == 'storage.readers: expected an integer from 1 to 64, got "four" (str)'


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[storage]\nfoo = 1", "storage.foo"),
        ("[storge]\nreaders = 1", "storge"),
        ("datadir = '/x'", "datadir"),
        ("[reactions.ci-broken]\nretries = 1", "reactions.ci-broken"),
        ("[reactions.ci-failed]\nretry = 1", "reactions.ci-failed.retry"),
        ("[notifiers.p]\ntype = 'desktop'\nsound = true", "notifiers.p.sound"),
        ("[routing]\npanic = []", "routing.panic"),
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, env: dict[str, str], text: str, key: str) -> None:
    message = error_for(tmp_path, text, env)

    assert message.startswith(f"{tmp_path / 'config.toml'}: unknown key '{key}'")


def test_notifier_keys_of_another_type_are_errors(tmp_path: Path, env: dict[str, str]) -> None:
    message = error_for(tmp_path, '[notifiers.p]\ntype = "webhook"\nurl = "https://h"\ncommand = ["x"]', env)

    assert "notifiers.p.command" in message
    assert 'type "command"' in message


def test_invalid_toml_syntax(tmp_path: Path, env: dict[str, str]) -> None:
    message = error_for(tmp_path, "[storage]\nreaders = = 4\n", env)

    assert message.startswith(f"{tmp_path / 'config.toml'}: invalid TOML: ")
    assert "line 2" in message


def test_an_explicitly_named_missing_file_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError, match="config file not found") as by_arg:
        load_config(missing, env=env, platform="linux")
    with pytest.raises(ConfigError, match="config file not found") as by_env:
        load_config(env={**env, "AOD_CONFIG": str(missing)}, platform="linux")

    assert str(missing) in str(by_arg.value)
    assert str(missing) in str(by_env.value)


def test_an_unreadable_config_path_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_config(tmp_path, env=env, platform="linux")

    assert str(tmp_path) in str(info.value)


def test_routing_to_an_undefined_notifier(tmp_path: Path, env: dict[str, str]) -> None:
    message = error_for(
        tmp_path, '[notifiers.pager]\ntype = "desktop"\n\n[routing]\nurgent = ["pager", "sms"]\n', env
    )

    assert message.startswith(f"{tmp_path / 'config.toml'}: routing.urgent: ")
    assert '"sms" is not defined' in message
    assert '"pager"' in message


@pytest.mark.parametrize("tcp", ["", "127.0.0.1:0", "0.0.0.0:65535", "localhost:8765", "[::1]:8765"])
def test_valid_tcp_addresses(tcp: str) -> None:
    assert parse_config({"server": {"tcp": tcp}}).server.tcp == tcp
