"""aod's configuration: one optional TOML file, where every mistake is named by its dotted key.

Each settable field carries its own validator in the dataclass field metadata, so one generic
builder handles every table; a new setting is one line. Unknown keys are errors so that a typo
never silently falls back to a default.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar
from urllib.parse import urlsplit

from aod.paths import (
    default_config_path,
    default_data_dir,
    default_socket_path,
    resolve_config_path,
    runtime_paths,
)

__all__ = [
    "PRIORITIES",
    "REACTION_KEYS",
    "Config",
    "ConfigError",
    "ForwardConfig",
    "HookConfig",
    "IngestConfig",
    "LifecycleConfig",
    "ModelPrice",
    "NotifierConfig",
    "PostgresForwardConfig",
    "PriceRates",
    "ReactionConfig",
    "ReaperConfig",
    "RetentionConfig",
    "ScmConfig",
    "ServerConfig",
    "StorageConfig",
    "StreamConfig",
    "UsageConfig",
    "default_config_path",
    "default_data_dir",
    "default_socket_path",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "resolve_config_path",
]

PRIORITIES = ("urgent", "action", "info")
NOTIFIER_TYPES = ("command", "webhook", "desktop")
MIB = 1 << 20
DB_FILENAME = "aod.db"


def desktop_program(path: str | None = None, platform: str = sys.platform) -> str | None:
    """The program that shows a desktop notification here: notify-send (freedesktop), else osascript
    on macOS, found on `path` (default: $PATH). The default routing depends on it, and the desktop
    notifier sends with it."""
    found = shutil.which("notify-send", path=path)
    if found is None and platform == "darwin":
        found = shutil.which("osascript", path=path)
    return found


class ConfigError(ValueError):
    """An invalid setting; `str()` reads `<file>: <dotted.key>: <problem>`."""

    def __init__(self, problem: str, *, key: str | None = None, source: str | None = None) -> None:
        self.problem = problem
        self.key = key
        self.source = source
        super().__init__(": ".join(part for part in (source, key, problem) if part))

    def at(self, source: str) -> ConfigError:
        """The same error, attributed to the file it came from."""
        return ConfigError(self.problem, key=self.key, source=source)


class _Missing:
    pass


_MISSING = _Missing()
Check = Callable[[Any, str], Any]


def _show(value: object) -> str:
    if value is _MISSING:
        return "nothing"
    if isinstance(value, bool):
        text, kind = ("true" if value else "false"), "bool"
    elif isinstance(value, str):
        text, kind = json.dumps(value, ensure_ascii=False), "str"
    else:
        text = repr(value)
        kinds: dict[type, str] = {list: "array", dict: "table"}
        kind = kinds.get(type(value), type(value).__name__)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


def _invalid(key: str, expected: str, value: object) -> ConfigError:
    return ConfigError(f"expected {expected}, got {_show(value)}", key=key)


def _unknown(key: str, known: Iterable[str]) -> ConfigError:
    return ConfigError(f"unknown key '{key}' (known: {', '.join(sorted(known))})")


def _is_number(value: object) -> TypeGuard[int | float]:
    # bool is an int subclass, and `enabled = true` must not read as 1 second.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- durations and sizes ------------------------------------------------------------------------

_DURATION_UNITS = {
    "": Decimal(1),
    "us": Decimal("0.000001"),
    "µs": Decimal("0.000001"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
# Decimal keeps "0.2ms" exactly 0.0002 instead of accumulating binary float error.
_AMOUNT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)")
_DURATION_EXPECTED = 'a duration (seconds, or a string like "500ms", "30s", "10m", "2h")'
_SIZE_EXPECTED = 'a size (bytes, or a string like "64KiB", "16MiB", "64KB")'


def parse_duration(value: object, key: str) -> float:
    """Seconds from a non-negative number of seconds or a string like "250us", "1.5s", "10m", "1d"."""
    if _is_number(value) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = _AMOUNT.fullmatch(value.strip().lower())
        if match and match[2] in _DURATION_UNITS:
            return float(Decimal(match[1]) * _DURATION_UNITS[match[2]])
    raise _invalid(key, _DURATION_EXPECTED, value)


def parse_size(value: object, key: str) -> int:
    """Bytes from a non-negative integer or a string like "64KiB" (1024-based) or "64KB" (1000-based)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _AMOUNT.fullmatch(value.strip().lower())
        if match and match[2] in _SIZE_UNITS:
            size = Decimal(match[1]) * _SIZE_UNITS[match[2]]
            if size == size.to_integral_value():
                return int(size)
    raise _invalid(key, _SIZE_EXPECTED, value)


# --- validators ---------------------------------------------------------------------------------


def _duration(*, positive: bool = False, below: float | None = None) -> Callable[[Any, str], float]:
    def check(value: Any, key: str) -> float:
        seconds = parse_duration(value, key)
        if positive and seconds <= 0:
            raise _invalid(key, "a duration > 0", value)
        if below is not None and seconds >= below:
            raise _invalid(key, f"a duration below {below:g}s", value)
        return seconds

    return check


def _optional_duration(value: Any, key: str) -> float | None:
    # TOML has no null, so switching escalation off needs a word.
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    try:
        return _duration(positive=True)(value, key)
    except ConfigError:
        raise _invalid(key, 'a duration > 0 (like "30m") or "never"', value) from None


def _size(value: Any, key: str) -> int:
    size = parse_size(value, key)
    if size < 1:
        raise _invalid(key, "a size of at least 1 byte", value)
    return size


def _integer(lo: int, hi: int) -> Check:
    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _invalid(key, f"an integer from {lo} to {hi}", value)
        return value

    return check


def _positive_number(value: Any, key: str) -> float:
    if not _is_number(value) or value <= 0:
        raise _invalid(key, "a number > 0", value)
    return float(value)


def _choice(*options: str) -> Check:
    def check(value: Any, key: str) -> str:
        if isinstance(value, str) and value.lower() in options:
            return value.lower()
        raise _invalid(key, "one of " + ", ".join(f'"{o}"' for o in options), value)

    return check


def _text(*, nonempty: bool = False) -> Check:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or (nonempty and not value.strip()):
            raise _invalid(key, "a non-empty string" if nonempty else "a string", value)
        return value

    return check


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(key, "true or false", value)
    return value


def _strings(*, nonempty: bool = False) -> Check:
    def check(value: Any, key: str) -> tuple[str, ...]:
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        if not ok or (nonempty and not value):
            raise _invalid(key, "a non-empty array of strings" if nonempty else "an array of strings", value)
        return tuple(value)

    return check


def _tcp(value: object, key: str) -> str:
    if value == "":
        return value
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        # An IPv6 host must be bracketed, or "::1:80" would be ambiguous.
        ipv6 = len(host) > 2 and host[0] == "[" and host[-1] == "]"
        plain = bool(host) and not any(c in host for c in ":[] ")
        if sep and (ipv6 or plain) and port.isdigit() and int(port) <= 65535:
            return value
    raise _invalid(key, '"host:port" with a port from 0 to 65535, or "" to disable TCP', value)


def _url(value: Any, key: str) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value
    raise _invalid(key, "an http:// or https:// URL", value)


def _price(value: Any, key: str) -> float:
    if _is_number(value) and value >= 0:
        return float(value)
    raise _invalid(key, "a price in USD per million tokens (a number, 0 or more)", value)


def _postgres_dsn(value: Any, key: str) -> str:
    if isinstance(value, str) and value == "":
        return value
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("postgresql", "postgres") and (parts.netloc or parts.query):
            return str(value)
    raise _invalid(key, 'a "postgresql://user@host:port/db" URL, or "" to not forward', value)


def _setting(default: Any, check: Check) -> Any:
    return field(default=default, metadata={"check": check})


# --- the settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    tcp: str = _setting("127.0.0.1:8765", _tcp)
    log_level: str = _setting("info", _choice("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class StorageConfig:
    synchronous: str = _setting("normal", _choice("normal", "full"))
    readers: int = _setting(4, _integer(1, 64))
    batch_max: int = _setting(512, _integer(1, 100_000))
    # A group commit waits at most this long for company; past 10 ms it is latency, not batching.
    batch_wait: float = _setting(0.0002, _duration(below=0.01))


@dataclass(frozen=True)
class IngestConfig:
    max_payload_bytes: int = _setting(65536, _size)
    max_body_bytes: int = _setting(16 * MIB, _size)
    dedup_window: float = _setting(5.0, _duration())


@dataclass(frozen=True)
class HookConfig:
    timeout: float = _setting(0.3, _duration(positive=True))


@dataclass(frozen=True)
class ReaperConfig:
    # The fallback probe: exits are events (aod/runtime/watch.py); this catches what no watch hears.
    interval: float = _setting(60.0, _duration(positive=True))
    grace: float = _setting(60.0, _duration())  # a dead runtime ends a session only after this long without events
    probe_timeout: float = _setting(5.0, _duration(positive=True))


@dataclass(frozen=True)
class LifecycleConfig:
    stuck_after: float = _setting(600.0, _duration(positive=True))


@dataclass(frozen=True)
class ScmConfig:
    interval: float = _setting(60.0, _duration(positive=True))
    gh: str = _setting("gh", _text(nonempty=True))
    max_concurrent: int = _setting(4, _integer(1, 64))
    timeout: float = _setting(30.0, _duration(positive=True))  # one gh call


@dataclass(frozen=True)
class StreamConfig:
    ping_interval: float = _setting(15.0, _duration(positive=True))
    queue_size: int = _setting(1000, _integer(1, 1_000_000))


@dataclass(frozen=True)
class RetentionConfig:
    events_days: float = _setting(30.0, _positive_number)
    change_log_days: float = _setting(7.0, _positive_number)
    batch_size: int = _setting(500, _integer(1, 100_000))
    interval: float = _setting(3600.0, _duration(positive=True))  # how often the janitor prunes


@dataclass(frozen=True)
class PostgresForwardConfig:
    dsn: str = _setting("", _postgres_dsn)  # "" = off
    batch_size: int = _setting(1000, _integer(1, 100_000))  # change_log rows per PostgreSQL transaction
    # The circuit breaker: after 5 failures in a row, no attempt for this long, then one probe.
    open_for: float = _setting(30.0, _duration(positive=True))


@dataclass(frozen=True)
class ForwardConfig:
    postgres: PostgresForwardConfig = field(default_factory=PostgresForwardConfig)


@dataclass(frozen=True)
class ReactionConfig:
    action: str = _setting("notify", _choice("send-to-agent", "notify"))
    message: str = _setting("", _text())
    retries: int = _setting(0, _integer(0, 100))
    escalate_after: float | None = _setting(None, _optional_duration)
    priority: str = _setting("info", _choice(*PRIORITIES))
    enabled: bool = _setting(True, _boolean)


@dataclass(frozen=True)
class NotifierConfig:
    name: str = ""  # the table name under [notifiers], not a settable key
    type: str = _setting("desktop", _choice(*NOTIFIER_TYPES))
    command: tuple[str, ...] = _setting((), _strings(nonempty=True))
    url: str = _setting("", _url)
    timeout: float = _setting(10.0, _duration(positive=True))
    max_attempts: int = _setting(8, _integer(1, 100))  # then the delivery is marked failed
    backoff: float = _setting(5.0, _duration(positive=True))  # before the 2nd try; doubles after each


@dataclass(frozen=True)
class PriceRates:
    """USD per million tokens ([usage.prices."model"]); every key is required: a price left out
    would count those tokens as free."""

    input: float = _setting(0.0, _price)
    output: float = _setting(0.0, _price)
    cache_write_5m: float = _setting(0.0, _price)
    cache_write_1h: float = _setting(0.0, _price)
    cache_read: float = _setting(0.0, _price)


@dataclass(frozen=True)
class ModelPrice:
    base: PriceRates
    long_context: PriceRates | None = None  # every token of a request over 200k input tokens


@dataclass(frozen=True)
class UsageConfig:
    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: MappingProxyType({}))


_DEFAULT_REACTIONS: Mapping[str, ReactionConfig] = MappingProxyType(
    {
        "ci-failed": ReactionConfig(
            action="send-to-agent",
            message="CI is failing on your pull request. Read the failing checks, fix the cause, "
            "and push the fix.",
            retries=2,
            escalate_after=30 * 60.0,
            priority="urgent",
        ),
        "changes-requested": ReactionConfig(
            action="send-to-agent",
            message="A reviewer requested changes on your pull request. Address every review "
            "comment and push the changes.",
            retries=2,
            escalate_after=60 * 60.0,
            priority="action",
        ),
        "needs-input": ReactionConfig(message="The agent is waiting for your input.", priority="urgent"),
        "stuck": ReactionConfig(
            message="The agent has made no progress for a while.", escalate_after=10 * 60.0, priority="action"
        ),
        "approved-and-green": ReactionConfig(message="The pull request is approved and CI is green."),
        "exited": ReactionConfig(message="The agent exited."),
        "merged": ReactionConfig(message="The pull request was merged."),
    }
)
REACTION_KEYS = tuple(_DEFAULT_REACTIONS)
# Which keys each notifier type requires; the other types' keys are errors there, not ignored.
_NOTIFIER_KEYS: Mapping[str, tuple[str, ...]] = {"command": ("command",), "webhook": ("url",), "desktop": ()}


def _no_routes() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({p: () for p in PRIORITIES})


# The notifier a config without [notifiers] and [routing] gets, when this machine has one.
DEFAULT_NOTIFIER = "desktop"


def _default_notifiers(
    env: Mapping[str, str], platform: str
) -> tuple[Mapping[str, NotifierConfig], Mapping[str, tuple[str, ...]]]:
    """Urgent escalations (a permission prompt, CI still failing) go to the desktop when
    notify-send or osascript is on PATH: recorded where no one looks, they would only pile up.
    Read from `env`, so a daemon started (or reloaded) with another PATH decides afresh, and a
    PATH-less environment finds nothing."""
    if desktop_program(env.get("PATH", ""), platform) is None:
        return MappingProxyType({}), _no_routes()
    desktop = NotifierConfig(name=DEFAULT_NOTIFIER, type="desktop")
    return MappingProxyType({DEFAULT_NOTIFIER: desktop}), MappingProxyType({**_no_routes(), "urgent": (DEFAULT_NOTIFIER,)})


@dataclass(frozen=True, kw_only=True)
class Config:
    data_dir: Path
    socket_path: Path
    config_path: Path | None = None
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    hook: HookConfig = field(default_factory=HookConfig)
    reaper: ReaperConfig = field(default_factory=ReaperConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    scm: ScmConfig = field(default_factory=ScmConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    reactions: Mapping[str, ReactionConfig] = field(default_factory=lambda: _DEFAULT_REACTIONS)
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=lambda: MappingProxyType({}))
    routing: Mapping[str, tuple[str, ...]] = field(default_factory=_no_routes)

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILENAME


_SECTIONS: Mapping[str, type] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "ingest": IngestConfig,
    "hook": HookConfig,
    "reaper": ReaperConfig,
    "lifecycle": LifecycleConfig,
    "scm": ScmConfig,
    "stream": StreamConfig,
    "retention": RetentionConfig,
}
_TOP_KEYS = (*_SECTIONS, "forward", "usage", "reactions", "notifiers", "routing", "data_dir", "socket")

# --- building from a TOML document --------------------------------------------------------------

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# The settings classes: dataclasses, whose fields carry their checks.
T = TypeVar("T", bound="DataclassInstance")


def _table(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(key, "a table", value)
    return value


def _checks(obj: DataclassInstance | type[DataclassInstance]) -> dict[str, Check]:
    return {f.name: f.metadata["check"] for f in fields(obj) if "check" in f.metadata}


def _build(base: T, value: Any, prefix: str) -> T:
    """`base` with the keys set in the table `value` validated and applied; others keep their value."""
    checks = _checks(base)
    table = _table(value, prefix)
    for key in table:
        if key not in checks:
            raise _unknown(f"{prefix}.{key}", checks)
    return replace(base, **{k: checks[k](v, f"{prefix}.{k}") for k, v in table.items()})


def _rates(value: Any, prefix: str) -> PriceRates:
    table = _table(value, prefix)
    for key in _checks(PriceRates):
        if key not in table:
            raise ConfigError("missing (a price left out would count those tokens as free)", key=f"{prefix}.{key}")
    return _build(PriceRates(), table, prefix)


def _usage(value: Any) -> UsageConfig:
    table = _table(value, "usage")
    for key in table:
        if key != "prices":
            raise _unknown(f"usage.{key}", ("prices",))
    prices = {}
    for model, rates in _table(table.get("prices", {}), "usage.prices").items():
        prefix = f"usage.prices.{model}"
        rates = dict(_table(rates, prefix))
        long = rates.pop("long_context", None)
        prices[model] = ModelPrice(_rates(rates, prefix),
                                   None if long is None else _rates(long, f"{prefix}.long_context"))
    return UsageConfig(prices=MappingProxyType(prices))


def _forward(value: Any) -> ForwardConfig:
    table = _table(value, "forward")
    for key in table:
        if key != "postgres":
            raise _unknown(f"forward.{key}", ("postgres",))
    return ForwardConfig(postgres=_build(PostgresForwardConfig(), table.get("postgres", {}), "forward.postgres"))


def _reactions(value: Any) -> Mapping[str, ReactionConfig]:
    merged = dict(_DEFAULT_REACTIONS)
    for name, table in _table(value, "reactions").items():
        if name not in merged:
            raise _unknown(f"reactions.{name}", merged)
        merged[name] = _build(merged[name], table, f"reactions.{name}")
    return MappingProxyType(merged)


def _notifier(name: str, value: Any) -> NotifierConfig:
    prefix = f"notifiers.{name}"
    table = _table(value, prefix)
    kind = _checks(NotifierConfig)["type"](table.get("type", _MISSING), f"{prefix}.type")
    for other, keys in _NOTIFIER_KEYS.items():
        for key in keys:
            if other != kind and key in table:
                raise ConfigError(
                    f'only used by notifiers of type "{other}", this one is "{kind}"', key=f"{prefix}.{key}"
                )
            if other == kind and key not in table:
                _checks(NotifierConfig)[key](_MISSING, f"{prefix}.{key}")
    return _build(NotifierConfig(name=name, type=kind), table, prefix)


def _routing(value: Any, notifiers: Mapping[str, NotifierConfig]) -> Mapping[str, tuple[str, ...]]:
    routes = dict(_no_routes())
    for priority, names in _table(value, "routing").items():
        key = f"routing.{priority}"
        if priority not in routes:
            raise _unknown(key, routes)
        routes[priority] = _strings()(names, key)
        for name in routes[priority]:
            if name not in notifiers:
                defined = ", ".join(f'"{n}"' for n in notifiers) or "none"
                raise ConfigError(
                    f'notifier "{name}" is not defined under [notifiers] (defined: {defined})', key=key
                )
    return MappingProxyType(routes)


def parse_config(
    doc: str | Mapping[str, Any],
    source: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    socket: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
) -> Config:
    """A Config from TOML text or an already-parsed document; `source` is the file it came from."""
    try:
        if isinstance(doc, str):
            try:
                doc = tomllib.loads(doc)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"invalid TOML: {exc}") from None
        return _from_doc(dict(doc), source, data_dir, socket, env, platform)
    except ConfigError as exc:
        if source is None:
            raise
        raise exc.at(os.fspath(source)) from None


def _from_doc(
    doc: dict[str, Any],
    source: str | os.PathLike[str] | None,
    data_dir_arg: str | os.PathLike[str] | None,
    socket_arg: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    platform: str,
) -> Config:
    for key in doc:
        if key not in _TOP_KEYS:
            raise _unknown(key, _TOP_KEYS)
    sections = {name: _build(cls(), doc.get(name, {}), name) for name, cls in _SECTIONS.items()}
    notifiers: Mapping[str, NotifierConfig] = MappingProxyType(
        {
            name: _notifier(name, table)
            for name, table in _table(doc.get("notifiers", {}), "notifiers").items()
        }
    )
    routing = _routing(doc.get("routing", {}), notifiers)
    # Either table, even empty, is the user's own choice: an empty [routing] turns pages off.
    if "notifiers" not in doc and "routing" not in doc:
        notifiers, routing = _default_notifiers(env, platform)
    config_path = Path(source) if source is not None else None
    # A relative path in the file means relative to the file: a daemon's cwd is arbitrary.
    base = os.fspath(config_path.parent) if config_path else None
    data_dir, socket_path = runtime_paths(
        doc,
        base,
        data_dir=data_dir_arg,
        socket=socket_arg,
        env=env,
        platform=platform,
        check=_text(nonempty=True),
    )
    return Config(
        data_dir=Path(data_dir),
        socket_path=Path(socket_path),
        config_path=config_path,
        usage=_usage(doc.get("usage", {})),
        forward=_forward(doc.get("forward", {})),
        reactions=_reactions(doc.get("reactions", {})),
        notifiers=notifiers,
        routing=routing,
        **sections,
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    socket: str | os.PathLike[str] | None = None,
    tcp: str | None = None,
    env: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
) -> Config:
    """The effective config: arguments (CLI flags) > AOD_* environment > the file > platform defaults.

    A missing file is fine at the default location (aod runs on defaults) but an error when it
    was named by `path` or AOD_CONFIG, since then the user expects it to be read. `tcp` is
    `aod serve --tcp`, in place of server.tcp.
    """
    config = _load_file(path, data_dir=data_dir, socket=socket, env=env, platform=platform)
    if tcp is None:
        return config
    # Checked apart from the file: a bad value is the flag's mistake, named as the flag.
    return replace(config, server=replace(config.server, tcp=_tcp(tcp, "--tcp")))


def _load_file(
    path: str | os.PathLike[str] | None,
    *,
    data_dir: str | os.PathLike[str] | None,
    socket: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    platform: str,
) -> Config:
    file, explicit = resolve_config_path(path, env=env, platform=platform)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError("config file not found", source=str(file)) from None
        return parse_config({}, None, data_dir=data_dir, socket=socket, env=env, platform=platform)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=str(file)) from None
    return parse_config(text, file, data_dir=data_dir, socket=socket, env=env, platform=platform)
