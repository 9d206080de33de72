"""`aod db migrate|check|prune`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aod.cli.context import config_from_args
from aod.config import Config
from aod.storage.lock import DataDirBusy, DataDirLock
from aod.storage.migrate import migrate
from aod.storage.selfcheck import run_checks

EXIT_FAILED = 1
EXIT_BUSY = 2


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.db_command == "prune":
        return _prune(config, dry_run=args.dry_run, as_json=args.json)
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_BUSY
    try:
        if args.db_command == "migrate":
            return _migrate(config.db_path)
        return _check(config.db_path, as_json=args.json)
    finally:
        lock.release()


def _migrate(db_path: Path) -> int:
    result = migrate(db_path)
    if result.applied:
        print(f"applied {', '.join(result.applied)} to {db_path}")
    else:
        print(f"{db_path} is up to date")
    print(f"schema version {result.schema_version}")
    return 0


def _check(db_path: Path, *, as_json: bool) -> int:
    checks = run_checks(db_path)
    ok = all(c.ok for c in checks)
    if as_json:
        print(json.dumps({"ok": ok, "db_path": str(db_path),
                          "checks": [c.__dict__ for c in checks]}, indent=2))
    else:
        print(f"database {db_path}")
        for c in checks:
            print(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<20} {c.detail}")
    return 0 if ok else EXIT_FAILED


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
            print(f"aod: the daemon answered {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
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
