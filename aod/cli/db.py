"""`aod db migrate|check|prune|backup|restore`.

Without a daemon each opens the file under the data dir lock; while a daemon holds that lock,
`check` and `prune` ask it to do the work and `migrate` reports what the daemon applied.
`backup` copies the file itself even then (aod/storage/backup.py says why that is safe);
`restore` refuses while anything holds the lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aod.cli.context import config_from_args
from aod.cli.output import say_refused
from aod.config import Config
from aod.storage import selfcheck
from aod.storage.lock import DataDirBusy, DataDirLock
from aod.storage.migrate import migrate, migration_ids

EXIT_FAILED = 1
EXIT_BUSY = 2
CHECK_TIMEOUT = 600.0


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.db_command == "prune":
        return _prune(config, dry_run=args.dry_run, as_json=args.json)
    if args.db_command in ("backup", "restore"):
        from aod.cli import db_backup

        return db_backup.run(config, args)
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        # A daemon owns the file while it runs (DESIGN §5: the CLI never opens it then).
        return _with_daemon(config, args, busy=exc)
    try:
        if args.db_command == "migrate":
            return _migrate(config.db_path)
        checks = selfcheck.run_checks(config.db_path, full=args.full)
        return _print_check(selfcheck.report(config.db_path, checks, full=args.full), as_json=args.json, where=None)
    finally:
        lock.release()


def _with_daemon(config: Config, args: argparse.Namespace, *, busy: DataDirBusy) -> int:
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable

    migrating = args.db_command == "migrate"
    # integrity_check reads every page: minutes on a large file.
    client = DaemonClient(config.socket_path, timeout=10.0 if migrating else CHECK_TIMEOUT)
    try:
        if migrating:
            _, status = client.get_json("/v1/status")
            return _daemon_migrates(status, config.socket_path)
        _, found = client.get_json("/v1/admin/check", {"full": args.full})
    except DaemonUnavailable as exc:
        print(f"aod: {busy} ({exc})", file=sys.stderr)
        return EXIT_BUSY
    except DaemonError as exc:
        say_refused(exc)
        return EXIT_FAILED
    return _print_check(found, as_json=args.json, where=f"checked by the daemon on {config.socket_path}")


def _migrate(db_path: Path) -> int:
    result = migrate(db_path)
    if result.applied:
        print(f"applied {', '.join(result.applied)} to {db_path}")
    else:
        print(f"{db_path} is up to date")
    print(f"schema version {result.schema_version}")
    return 0


def _daemon_migrates(status: dict[str, Any], socket: Path) -> int:
    """A running daemon applied every migration it knows of when it started; only code installed
    since then can have more, and only a restart runs them (the daemon holds the file)."""
    db = status.get("db") or {}
    version = db.get("schema_version")
    print(f"the daemon on {socket} (pid {status.get('pid', '?')}) migrates {db.get('path')} when it starts")
    print(f"schema version {version}")
    pending = [m for m in migration_ids() if version is None or m > str(version)]
    if pending:
        print(f"aod: this aod has {len(pending)} migration(s) the running daemon has not applied"
              f" ({', '.join(pending)}); restart the daemon to apply them", file=sys.stderr)
        return EXIT_FAILED
    print("nothing pending")
    return 0


def _print_check(found: dict[str, Any], *, as_json: bool, where: str | None) -> int:
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        print(f"database {found.get('db_path')}")
        for c in found.get("checks") or []:
            print(f"  {'ok  ' if c.get('ok') else 'FAIL'}  {c.get('name', '?'):<20} {c.get('detail', '')}")
        if where:
            print(where)
    return 0 if found.get("ok") else EXIT_FAILED


def _prune(config: Config, *, dry_run: bool, as_json: bool) -> int:
    """Retention now. A running daemon owns the file, so it is asked to prune; only when no
    daemon holds the data dir lock does the CLI open the database (taking that lock itself)."""
    import asyncio

    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable

    if not config.db_path.exists():
        print(f"aod: no database at {config.db_path}", file=sys.stderr)
        return EXIT_FAILED
    try:
        report = asyncio.run(_prune_here(config, dry_run))
        where = f"pruned {config.db_path} directly (no daemon running)"
    except DataDirBusy:
        client = DaemonClient(config.socket_path, timeout=300.0)
        try:
            _, report = client.post_json("/v1/admin/prune" + ("?dry_run=1" if dry_run else ""), {})
        except DaemonUnavailable as exc:
            print(f"aod: the data dir is locked by another process, and {exc}", file=sys.stderr)
            return EXIT_BUSY
        except DaemonError as exc:
            say_refused(exc)
            return EXIT_FAILED
        where = f"pruned by the daemon on {config.socket_path}"
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    verb = "would delete" if report.get("dry_run") else "deleted"
    print(f"{verb} {report.get('events', 0):,} events received before {report.get('events_before')}")
    print(f"{verb} {report.get('change_log', 0):,} change_log rows logged before {report.get('change_log_before')}")
    floor = f"{report.get('floor_before')} -> {report.get('floor_after')}"
    print(f"retention floor would move {floor}" if report.get("dry_run") else f"retention floor {floor}")
    if not report.get("dry_run"):
        print(where)
    return 0


async def _prune_here(config: Config, dry_run: bool) -> dict[str, object]:
    from aod.maintenance.janitor import prune
    from aod.storage.database import open_storage

    storage = await open_storage(config.data_dir, config.storage)
    try:
        return (await prune(storage.db, config.retention, dry_run=dry_run)).as_json()
    finally:
        await storage.close()
