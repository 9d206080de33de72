"""`aod doctor`'s verdicts: each check a pure function of `Facts` gathered beforehand.

Gathering (aod/cli/doctor.py) touches the file system, the daemon and PATH; everything here only
decides, so each rule is testable with hand-made facts. The file-mode rules are aod/ownership.py's
`judge_*`: doctor reports what the daemon would refuse or tighten, in the daemon's own words.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aod import ownership
from aod.ownership import Action

Status = Literal["ok", "warn", "fail"]

WAL_WARN_BYTES = 256 << 20  # journal_size_limit is 64 MiB: far past it, checkpoints fall behind
FREE_WARN_BYTES = 1 << 30
FREE_FAIL_BYTES = 64 << 20
TOKEN_FILE = "token"  # aod.api.security.TOKEN_FILE, not imported: that module pulls in aiohttp
START = "start it: `aod serve` (or `aod service install` to have it started at login)"
LATER = "the daemon does this when it starts (`aod serve`)"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class HookEntry:
    """One aod handler in a settings file: the interpreter and hook client it runs."""

    interpreter: str
    client: str
    interpreter_exists: bool
    client_exists: bool


@dataclass(frozen=True)
class HookScope:
    scope: str  # user | project | local
    path: str
    entries: list[HookEntry] = field(default_factory=list)
    error: str | None = None  # a settings file that cannot be read


@dataclass(frozen=True)
class Service:
    manager: str | None  # "systemd" | "launchd" | None: neither on this machine
    unit: str | None  # the unit or plist file, when installed
    enabled: bool | None = None  # None: could not ask
    active: bool | None = None
    detail: str = ""  # why the manager could not be asked


@dataclass
class Facts:
    cli_version: str
    uid: int
    socket_path: str
    data_dir: str
    config_path: str | None
    config_error: str | None = None  # the CLI could not load the config file
    status: dict[str, Any] | None = None  # GET /v1/status, when a daemon answered
    daemon_error: str | None = None
    stats: dict[str, os.stat_result | None] = field(default_factory=dict)  # path -> (l)stat
    socket_dir: str = ""
    hooks: list[HookScope] = field(default_factory=list)
    service: Service | None = None
    spool_dir: str = ""
    spool_backlog: int = 0
    spool_rejected: int = 0
    db_exists: bool = False
    db_check: dict[str, Any] | None = None  # aod db check's report
    db_check_error: str | None = None
    wal_bytes: int | None = None
    free_bytes: int | None = None
    tools: dict[str, str | None] = field(default_factory=dict)  # name -> path on PATH


def daemon(f: Facts) -> Check:
    if f.status is None:
        return Check("daemon", "fail", f"not reachable on {f.socket_path}: {f.daemon_error}", START)
    return Check("daemon", "ok", f"running, pid {f.status.get('pid')}, on {f.socket_path}")


def version(f: Facts) -> Check:
    if f.status is None:
        return Check("version", "warn", f"aod {f.cli_version}; no daemon to compare with")
    theirs = f.status.get("version")
    if theirs != f.cli_version:
        return Check("version", "fail", f"the daemon runs aod {theirs}, this CLI is aod {f.cli_version}",
                     "restart the daemon so it runs the installed aod (`systemctl --user restart aod`,"
                     " or stop it and `aod serve`)")
    return Check("version", "ok", f"aod {theirs} (daemon and CLI)")


def config(f: Facts) -> Check:
    where = f.config_path or "no config file (defaults)"
    if f.config_error:
        return Check("config", "fail", f.config_error, f"fix {where}: docs/config.md lists every key")
    errors = (f.status or {}).get("config", {}).get("errors") or []
    if errors:
        shown = "; ".join(str(e) for e in errors[:3])
        return Check("config", "fail", f"the daemon keeps its last good config: {shown}",
                     f"fix {where}; the daemon reloads it when it changes")
    return Check("config", "ok", where)


def data_dir(f: Facts) -> Check:
    real = f.data_dir
    verdicts = [ownership.judge_private_dir("data dir", real, f.stats.get(real), f.uid)]
    spool = os.path.join(real, "spool")
    verdicts.append(ownership.judge_private_dir("data dir's spool/", spool, f.stats.get(spool), f.uid))
    open_to_others = []
    for name in ownership.PRIVATE_FILES:
        path = os.path.join(real, name)
        if name == TOKEN_FILE:
            continue  # its own check
        verdict = ownership.judge_private_file(path, f.stats.get(path), f.uid)
        verdicts.append(verdict)
        if verdict.action is Action.TIGHTEN:
            open_to_others.append(path)
    refused = [v.reason for v in verdicts if v.action is Action.REFUSE]
    if refused:
        return Check("data dir", "fail", "; ".join(refused), "the daemon refuses to start on it: see the message")
    if verdicts[0].action is Action.CREATE:
        return Check("data dir", "warn", f"{real} does not exist yet", f"{LATER}: created 0700")
    tighten = [p for p, v in ((real, verdicts[0]), (spool, verdicts[1])) if v.action is Action.TIGHTEN]
    if tighten or open_to_others:
        paths = [*tighten, *open_to_others]
        return Check("data dir", "fail", "open to group/others: " + ", ".join(paths),
                     "chmod go= " + " ".join(paths) + " (aod serve also does this when it starts)")
    return Check("data dir", "ok", f"{real} (0700, yours)")


def token(f: Facts) -> Check:
    path = os.path.join(f.data_dir, TOKEN_FILE)
    st = f.stats.get(path)
    if st is None:
        return Check("token", "warn", f"{path} does not exist yet", f"{LATER}, when it listens on TCP")
    verdict = ownership.judge_private_file(path, st, f.uid)
    if verdict.action is Action.REFUSE:
        return Check("token", "fail", verdict.reason, f"chown it back, or delete {path} (a new one is made)")
    if verdict.action is Action.TIGHTEN:
        return Check("token", "fail", f"{path} is mode {ownership.mode_text(st)}: other users can read the TCP token",
                     f"chmod 600 {path} (and restart the daemon, or delete the file, to issue a new token)")
    return Check("token", "ok", f"{path} ({ownership.mode_text(st)})")


def socket(f: Facts) -> Check:
    verdict = ownership.judge_socket_dir(f.socket_path, f.socket_dir, f.stats.get(f.socket_dir), f.uid)
    if verdict.action is Action.REFUSE:
        return Check("socket", "fail", verdict.reason, "use a directory of your own: --socket or AOD_SOCKET")
    st = f.stats.get(f.socket_path)
    if st is None:
        # No daemon: the daemon check already fails with the fix.
        return Check("socket", "warn", f"no socket at {f.socket_path}", LATER)
    if ownership.kind_text(st) != "a socket":
        return Check("socket", "fail", f"{f.socket_path} is {ownership.kind_text(st)}, not a socket",
                     f"move {f.socket_path} away; the daemon binds a new socket there when it starts")
    if st.st_uid != f.uid or st.st_mode & 0o077:
        return Check("socket", "fail", f"{f.socket_path} is mode {ownership.mode_text(st)}, uid {st.st_uid}",
                     "restart the daemon: it binds its socket 0600")
    return Check("socket", "ok", f"{f.socket_path} ({ownership.mode_text(st)}, in a directory only you can write)")


def hooks(f: Facts) -> Check:
    installed = [s for s in f.hooks if s.entries]
    unreadable = [s for s in f.hooks if s.error]
    broken = [(s, e) for s in installed for e in s.entries if not (e.interpreter_exists and e.client_exists)]
    if broken:
        scope, entry = broken[0]
        missing = entry.client if not entry.client_exists else entry.interpreter
        return Check("hooks", "fail", f"{len(broken)} aod hook entr{'y' if len(broken) == 1 else 'ies'} in"
                     f" {scope.path} run {missing}, which does not exist",
                     f"`aod hooks install --scope {scope.scope}` rewrites them for this aod")
    if not installed:
        where = ", ".join(f"{s.scope}: {s.path}" for s in f.hooks)
        detail = f"no aod hooks in Claude Code's settings ({where})"
        if unreadable:
            detail += "; " + "; ".join(s.error or "" for s in unreadable)
        return Check("hooks", "fail", detail, "`aod hooks install` (user scope: every project)")
    scopes = ", ".join(f"{s.scope} ({len(s.entries)} events)" for s in installed)
    if unreadable:
        return Check("hooks", "warn", f"installed in {scopes}; " + "; ".join(s.error or "" for s in unreadable),
                     "fix that settings file's JSON")
    return Check("hooks", "ok", f"installed in {scopes}")


def service(f: Facts) -> Check:
    s = f.service
    if s is None or s.manager is None:
        return Check("service", "warn", "no systemd user instance or launchd here",
                     "start the daemon yourself (`aod serve`), e.g. from your shell's profile")
    if s.unit is None:
        return Check("service", "warn", f"not installed as a {s.manager} service",
                     "`aod service install` starts it at login and restarts it after a crash")
    if s.enabled is None or s.active is None:
        return Check("service", "warn", f"{s.unit} installed; {s.manager} cannot say more: {s.detail}", None)
    if not s.active:
        return Check("service", "fail" if f.status is None else "warn",
                     f"{s.unit} installed, {'enabled' if s.enabled else 'not enabled'}, not running",
                     "`systemctl --user enable --now aod.socket aod.service`" if s.manager == "systemd"
                     else f"`launchctl bootstrap gui/{f.uid} {s.unit}`")
    if not s.enabled:
        return Check("service", "warn", f"{s.unit} running but not enabled: it will not start at login",
                     "`systemctl --user enable aod.socket aod.service`" if s.manager == "systemd"
                     else f"`launchctl bootstrap gui/{f.uid} {s.unit}`")
    return Check("service", "ok", f"{s.unit} enabled and running")


def spool(f: Facts) -> Check:
    rejected = os.path.join(f.spool_dir, "rejected")
    if f.spool_rejected:
        return Check("spool", "warn", f"{f.spool_rejected} rejected spool file(s) in {rejected}",
                     f"read them (and the dead letters); delete {rejected}/*.json once understood")
    if f.spool_backlog:
        waiting = "the daemon is ingesting them" if f.status is not None else "no daemon is ingesting them"
        return Check("spool", "warn", f"{f.spool_backlog} spooled event file(s) waiting: {waiting}",
                     None if f.status is not None else START)
    return Check("spool", "ok", f"empty ({f.spool_dir})")


def database(f: Facts) -> Check:
    if not f.db_exists:
        return Check("database", "warn", "no database yet", f"{LATER}: created and migrated")
    if f.db_check is None:
        return Check("database", "warn", f"not checked: {f.db_check_error}", "`aod db check`")
    failed = [c for c in f.db_check.get("checks") or [] if not c.get("ok")]
    if failed:
        return Check("database", "fail", "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in failed),
                     "`aod db check --full`; restore a backup (`aod db restore`) if the file is damaged")
    integrity: dict[str, Any] = next((c for c in f.db_check.get("checks") or [] if c.get("name") == "integrity"), {})
    return Check("database", "ok", f"{integrity.get('detail', 'checked')}, schema and triggers complete")


def wal(f: Facts) -> Check:
    if f.wal_bytes is None:
        return Check("wal", "ok", "no WAL file")
    if f.wal_bytes > WAL_WARN_BYTES:
        return Check("wal", "warn", f"{_size(f.wal_bytes)}: checkpoints are not keeping up",
                     "a long-lived reader pins the WAL (an open `sqlite3` shell?): close it; a restart checkpoints")
    return Check("wal", "ok", _size(f.wal_bytes))


def disk(f: Facts) -> Check:
    state = ((f.status or {}).get("storage") or {}).get("state", "ok")
    if state != "ok":
        return Check("disk", "fail", f"the daemon cannot write the database: {state}",
                     "free space on the data dir's file system (or make it writable again)")
    if f.free_bytes is None:
        return Check("disk", "warn", "free space unknown", None)
    if f.free_bytes < FREE_FAIL_BYTES:
        return Check("disk", "fail", f"{_size(f.free_bytes)} free", "free space on the data dir's file system")
    if f.free_bytes < FREE_WARN_BYTES:
        return Check("disk", "warn", f"{_size(f.free_bytes)} free", "free space on the data dir's file system")
    return Check("disk", "ok", f"{_size(f.free_bytes)} free")


def escalations(f: Facts) -> Check:
    if f.status is None:
        return Check("escalations", "warn", "unknown: no daemon to ask")
    open_by = (f.status.get("escalations") or {}).get("by_priority") or {}
    routing = f.status.get("routing") or {}
    unrouted = {p: n for p, n in open_by.items() if n and not routing.get(p)}
    if unrouted:
        shown = ", ".join(f"{n} {p}" for p, n in unrouted.items())
        return Check("escalations", "warn", f"open escalations reach no one: {shown} (no notifier routed)",
                     "route them in the config ([routing], docs/config.md), or look: `aod escalations --open`")
    total = sum(open_by.values())
    return Check("escalations", "ok", f"{total} open, every priority with one is routed" if total else "none open")


def forward(f: Facts) -> Check:
    if f.status is None:
        return Check("forward", "warn", "unknown: no daemon to ask")
    fw = f.status.get("forward") or {}
    if not fw.get("enabled"):
        return Check("forward", "ok", "off (no [forward.postgres] dsn)")
    behind = f"{fw.get('lag_rows', 0)} change(s) not forwarded, the oldest {fw.get('lag_seconds', 0):.0f} s old"
    reach = (f"check that {fw.get('target')} answers and that its role may write the schema aod"
             " (`aod team migrate` creates it); aod probes again by itself")
    if fw.get("circuit") != "closed":
        return Check("forward", "fail", f"the team store's circuit is {fw.get('circuit')} after"
                     f" {fw.get('failures_in_a_row')} failures in a row ({fw.get('last_error')}); {behind}", reach)
    if fw.get("retention_waiting"):
        return Check("forward", "warn", f"retention keeps old rows until they are forwarded: {behind}", reach)
    return Check("forward", "ok", f"forwarding to {fw.get('target')} as {fw.get('tenant')}: {behind}")


def tools(f: Facts) -> list[Check]:
    out = []
    for name, needed_for in (("tmux", "aod spawn, send and the reaper's pane probes"), ("git", "worktrees"),
                             ("gh", "PR and CI observation")):
        path = f.tools.get(name)
        if path:
            out.append(Check(name, "ok", path))
        else:
            out.append(Check(name, "warn" if name == "gh" else "fail", f"not found on PATH (needed for {needed_for})",
                             f"install {name}, or put it on the PATH the daemon runs with"))
    return out


CHECKS: tuple[Callable[[Facts], Check], ...] = (
    daemon, version, config, data_dir, token, socket, hooks, service, spool, database, wal, disk, escalations,
    forward,
)


def run(facts: Facts) -> list[Check]:
    return [*(check(facts) for check in CHECKS), *tools(facts)]


def report(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
