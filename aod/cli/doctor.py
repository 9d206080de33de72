"""`aod doctor [--json]`: gather the facts (daemon, files, settings, PATH), then let aod/doctor.py judge.

Exit 0 when no check fails (warnings allowed), 1 otherwise. A daemon that answers is asked for
what only it knows (its version, config errors, storage state, escalations and routing, a
quick_check); without one the CLI looks at the files itself, the database under the data dir lock.
"""

from __future__ import annotations

import argparse
import os
import sys

# main.py imports this module for every command (to register `doctor`): what the checks need is
# imported when they run. (Not typing.TYPE_CHECKING: importing typing costs ms too.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any

    from aod import doctor as rules

EXIT_FAILED = 1
DB_CHECK_TIMEOUT = 600.0  # quick_check reads every page once: long on a big file
SCOPES = ("user", "project", "local")
MARKS = {"utf": {"ok": "✓", "warn": "!", "fail": "✗"}, "ascii": {"ok": "ok", "warn": "!!", "fail": "XX"}}


def add_parser(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser("doctor", parents=list(parents), help="check the installation: daemon, files, hooks, service")
    doctor.add_argument("--json", action="store_true", help='print {"ok", "checks": [{"name", "status", "detail", "fix"}]}')


def run(args: argparse.Namespace) -> int:
    import json

    from aod import doctor as rules

    checks = rules.run(gather(args))
    found = rules.report(checks)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        _print(checks)
    return 0 if found["ok"] else EXIT_FAILED


def _print(checks: list[rules.Check]) -> None:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    marks = MARKS["utf" if encoding == "utf8" else "ascii"]
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{marks[c.status]} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            print(f"  {' ' * len(marks[c.status])}{' ' * width}  fix: {c.fix}")


# --- gathering ----------------------------------------------------------------------------------


def gather(args: argparse.Namespace) -> rules.Facts:
    import shutil

    from aod import __version__
    from aod import doctor as rules

    data_dir, socket_path, config_path, config_error = _paths(args)
    facts = rules.Facts(cli_version=__version__, uid=os.geteuid(), socket_path=socket_path,
                        data_dir=os.path.realpath(data_dir), config_path=config_path, config_error=config_error)
    _ask_daemon(facts)
    _stat_files(facts)
    facts.hooks = []
    for scope in SCOPES:
        found = _hook_scope(scope)
        # In the home directory the project scope's file is the user scope's: count it once.
        if all(found.path != seen.path for seen in facts.hooks):
            facts.hooks.append(found)
    facts.service = service_facts()
    _spool(facts)
    _database(facts)
    facts.tools = {name: shutil.which(name) for name in ("tmux", "git", "gh")}
    return facts


def _paths(args: argparse.Namespace) -> tuple[str, str, str | None, str | None]:
    from aod import paths
    from aod.cli.context import config_from_args_or_raise
    from aod.config import ConfigError

    try:
        config = config_from_args_or_raise(args)
        where = str(config.config_path) if config.config_path else None
        return str(config.data_dir), str(config.socket_path), where, None
    except ConfigError as exc:
        error = str(exc)
    # As the hook client reads it: flags, environment, whatever the file says about the paths.
    env = dict(os.environ)
    if getattr(args, "config", None):
        env["AOD_CONFIG"] = args.config
    doc, _ = paths.read_config(env, sys.platform)
    data_dir, socket_path = paths.runtime_paths(
        doc, None, data_dir=getattr(args, "data_dir", None), socket=getattr(args, "socket", None), env=env,
    )
    config_file, _ = paths.resolve_config_file(None, env, sys.platform)
    return data_dir, socket_path, config_file, error


def _ask_daemon(facts: rules.Facts) -> None:
    from pathlib import Path

    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable

    try:
        _, facts.status = DaemonClient(Path(facts.socket_path), timeout=5.0).get_json("/v1/status")
    except DaemonUnavailable as exc:
        facts.daemon_error = exc.reason
    except DaemonError as exc:
        facts.daemon_error = f"it answered {exc.status} {exc.code}: {exc.message}"


def _stat_files(facts: rules.Facts) -> None:
    import contextlib

    from aod import ownership

    def look(path: str, *, follow: bool) -> None:
        with contextlib.suppress(ownership.Refused):
            facts.stats[path] = ownership.stat_or_none(path, follow=follow)

    real = facts.data_dir
    look(real, follow=True)
    look(os.path.join(real, "spool"), follow=True)
    for name in ownership.PRIVATE_FILES:
        look(os.path.join(real, name), follow=False)
    facts.socket_dir = os.path.realpath(os.path.dirname(facts.socket_path))
    look(facts.socket_dir, follow=True)
    look(facts.socket_path, follow=False)


def _hook_scope(scope: str) -> rules.HookScope:
    from aod import doctor as rules
    from aod.cli import hooks

    path = hooks.settings_path(scope)
    try:
        _, doc = hooks.read_settings(path)
    except hooks.SettingsError as exc:
        return rules.HookScope(scope, str(path), error=str(exc))
    table = doc.get("hooks")
    entries = []
    for groups in (table.values() if isinstance(table, dict) else []):
        for group in groups if isinstance(groups, list) else []:
            for handler in (group.get("hooks") or []) if isinstance(group, dict) else []:
                if hooks.is_aod_handler(handler):
                    entries.append(_entry(handler))
    return rules.HookScope(scope, str(path), entries=entries)


def _entry(handler: dict[str, Any]) -> rules.HookEntry:
    """The interpreter and hook client an aod handler runs: `<python> -S <dir>/aod/hook.py ...`,
    or `aod hook` (the aod on PATH), or an http hook (nothing on disk to go missing)."""
    import shlex
    import shutil

    from aod import doctor as rules

    if handler.get("type") == "http":
        url = str(handler.get("url"))
        return rules.HookEntry(url, url, True, True)
    command = handler.get("command")
    extra = handler.get("args")
    argv = [command, *extra] if isinstance(extra, list) else shlex.split(str(command))
    if os.path.basename(str(argv[0])) == "aod":
        found = shutil.which(str(argv[0])) is not None
        return rules.HookEntry(str(argv[0]), str(argv[0]), found, found)
    interpreter, client = str(argv[0]), str(argv[2]) if len(argv) > 2 else ""
    # which(): an absolute path must be an executable file; a bare name is looked up as the shell would.
    return rules.HookEntry(interpreter, client, shutil.which(interpreter) is not None, os.path.isfile(client))


def service_facts() -> rules.Service:
    """What `aod service status` knows: aod's unit files, and what the service manager says of them."""
    import shutil

    from aod import doctor as rules
    from aod.cli.service import service_status
    from aod.service_units import LAUNCHD_LABEL, Stamp, unit_dir

    kind = "launchd" if sys.platform == "darwin" else "systemd"
    if not shutil.which("launchctl" if kind == "launchd" else "systemctl"):
        return rules.Service(None, None)
    unit = unit_dir(kind, os.environ) / (f"{LAUNCHD_LABEL}.plist" if kind == "launchd" else "aod.service")
    if not unit.exists():  # not installed: no need to ask the manager
        return rules.Service(kind, None)
    states = [s for s in service_status(kind) if s.stamp is not Stamp.MISSING]
    errors = [s.error for s in states if s.error]
    if errors:
        return rules.Service(kind, str(unit), detail=errors[0])
    # With socket activation aod.socket alone may be running: the kernel queues hooks, the daemon starts on demand.
    return rules.Service(kind, str(unit), enabled=any(s.enabled in ("enabled", "loaded") for s in states),
                         active=any(s.running for s in states))


def _spool(facts: rules.Facts) -> None:
    spool = (facts.status or {}).get("spool")
    if spool:
        facts.spool_dir, facts.spool_backlog, facts.spool_rejected = spool["path"], spool["backlog"], spool["rejected"]
        return
    from pathlib import Path

    from aod.ingest.spool import rejected_count

    directory = Path(facts.data_dir) / "spool"
    facts.spool_dir = str(directory)
    facts.spool_backlog = sum(1 for _ in directory.glob("*.json")) if directory.is_dir() else 0
    facts.spool_rejected = rejected_count(directory)


def _database(facts: rules.Facts) -> None:
    from pathlib import Path

    db = Path(facts.data_dir) / "aod.db"
    facts.db_exists = db.exists()
    wal = db.with_name(db.name + "-wal")
    facts.wal_bytes = wal.stat().st_size if wal.exists() else None
    storage = (facts.status or {}).get("storage") or {}
    facts.free_bytes = storage.get("free_bytes")
    if facts.free_bytes is None:
        from aod.storage.health import free_bytes

        # A data dir not made yet will be made on the file system of its nearest existing parent.
        existing = next(p for p in (db.parent, *db.parent.parents) if p.is_dir())
        facts.free_bytes = free_bytes(existing)
    if facts.db_exists:
        facts.db_check, facts.db_check_error = _db_check(facts, db)


def _db_check(facts: rules.Facts, db: Path) -> tuple[dict[str, Any] | None, str | None]:
    from pathlib import Path

    if facts.status is not None:
        from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable

        try:
            return DaemonClient(Path(facts.socket_path), timeout=DB_CHECK_TIMEOUT).get_json("/v1/admin/check")[1], None
        except (DaemonUnavailable, DaemonError) as exc:
            return None, f"the daemon could not check it ({exc})"
    from aod.storage import selfcheck
    from aod.storage.lock import DataDirBusy, DataDirLock

    lock = DataDirLock(Path(facts.data_dir))
    try:
        lock.acquire()
    except DataDirBusy as exc:
        return None, str(exc)
    try:
        return selfcheck.report(db, selfcheck.run_checks(db), full=False), None
    except Exception as exc:  # a damaged file: the report is the finding
        return {"checks": [{"name": "open", "ok": False, "detail": f"{type(exc).__name__}: {exc}"}]}, None
    finally:
        lock.release()
