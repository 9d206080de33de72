"""`aod db backup PATH` and `aod db restore PATH`.

Backup is done by the CLI itself, not by the daemon: a WAL reader of its own never blocks the
daemon's writer, the file is written with the user's own permissions where the user asked (no
daemon-side path checks), and the same code serves with or without a daemon. Without one it
holds the data dir lock, so no daemon starts (and no restore runs) mid-copy. With the lock
held by something that is not an answering daemon (a restore, a `db migrate`) it refuses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from aod.config import Config
from aod.storage import backup
from aod.storage.lock import DataDirBusy, DataDirLock

EXIT_FAILED = 1
EXIT_BUSY = 2


def run(config: Config, args: argparse.Namespace) -> int:
    path = Path(args.path).expanduser().absolute()
    try:
        if args.db_command == "backup":
            return _backup(config, path)
        return _restore(config, path)
    except backup.BackupError as exc:
        print(f"aod: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _backup(config: Config, target: Path) -> int:
    if not config.db_path.exists():  # before the lock, which would create the data dir
        raise backup.BackupError(f"no database at {config.db_path}")
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
        where = "no daemon running"
    except DataDirBusy as exc:
        reason = _daemon_absent(config)
        if reason:
            print(f"aod: {exc} ({reason}); retry when it is done", file=sys.stderr)
            return EXIT_BUSY
        where = "online, while the daemon runs"
    try:
        copied = backup.backup(config.db_path, target)
    finally:
        lock.release()
    print(f"backed up {config.db_path} to {copied.path} ({where})")
    print(f"{copied.bytes:,} bytes, {copied.events:,} events, schema {copied.schema_version},"
          f" integrity_check ok")
    return 0


def _daemon_absent(config: Config) -> str | None:
    """Why the lock holder is not a daemon we may read beside, or None when it is one."""
    from aod.cli.client import DaemonClient, DaemonError, DaemonUnavailable

    try:
        DaemonClient(config.socket_path, timeout=5.0).get_json("/v1/status")
    except DaemonUnavailable as exc:
        return str(exc)
    except DaemonError as exc:
        return f"the daemon answered {exc.status} {exc.code}"
    return None


def _restore(config: Config, source: Path) -> int:
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        print(f"aod: cannot restore while the daemon runs: {exc}", file=sys.stderr)
        return EXIT_BUSY
    try:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        restored, aside = backup.restore(source, config.db_path, stamp)
    finally:
        lock.release()
    print(f"restored {source} to {restored.path} ({restored.events:,} events, schema"
          f" {restored.schema_version}, new db_epoch {restored.db_epoch})")
    if aside:
        print(f"the previous database is kept as {aside[0]}")
    print("start the daemon to use it (it applies any newer migrations first)")
    return 0
