"""`aod db migrate|check`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aod.cli.context import config_from_args
from aod.storage.lock import DataDirBusy, DataDirLock
from aod.storage.migrate import migrate
from aod.storage.selfcheck import run_checks

EXIT_FAILED = 1
EXIT_BUSY = 2


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
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
