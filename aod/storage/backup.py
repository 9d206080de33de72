"""`aod db backup` / `aod db restore`: whole-file copies of the database, on apsw only.

Backup uses SQLite's online backup API from a connection of its own. Under WAL a reader never
blocks the writer, so the CLI may run it while a daemon keeps writing (DESIGN §5 allows exactly
this one exception); one read transaction is held across all steps, so the copy is a single
snapshot and the API never restarts it when the daemon commits in between. The copy is switched
to journal_mode=DELETE (one self-contained file), integrity-checked, fsynced and renamed into
place, so a reader of PATH sees the old file or the whole new one, never a half.

Restore runs only under the data dir lock (no daemon). The file it replaces is kept aside with
its WAL folded in, and the restored file gets a new `db_epoch`: its change_log seqs restart
wherever the backup left them, so every SSE cursor handed out since must be answered `reset`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from aod.storage import events, meta
from aod.storage.connection import open_connection

# Pages copied per step: small enough that a huge file is not one long C call, large enough
# that a typical file takes a handful of steps.
STEP_PAGES = 4096
SIDE_FILES = ("-wal", "-shm", "-journal")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, worded for the user."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    db_epoch: str
    schema_version: str | None
    events: int


def backup(db_path: Path, target: Path) -> Copied:
    """Copy the live database at `db_path` to `target` (absolute), atomically."""
    if not db_path.exists():
        raise BackupError(f"no database at {db_path}")
    _check_target(db_path, target)
    source = open_connection(db_path, query_only=True)
    try:
        # The read transaction pins one snapshot for every step (see the module docstring).
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM meta").fetchone()
        return _write_atomically(target, lambda dest: _copy(source, dest))
    finally:
        with contextlib.suppress(apsw.Error):
            source.execute("COMMIT")
        source.close()


def verify(path: Path) -> Copied:
    """Integrity-check a backup file (read-only) and say what it holds."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    try:
        return _describe(conn, path)
    except apsw.Error as exc:
        raise BackupError(f"{path} is not a readable aod database: {exc}") from None
    finally:
        conn.close()


def restore(backup_file: Path, db_path: Path, stamp: str) -> tuple[Copied, list[Path]]:
    """Put `backup_file` in place of `db_path`; the caller holds the data dir lock.

    Answers the restored file and the files moved aside (`<db>.before-restore-<stamp>`...).
    """
    verify(backup_file)
    source = apsw.Connection(str(backup_file), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        def copy_with_new_epoch(dest: apsw.Connection) -> None:
            _copy(source, dest)
            meta.new_db_epoch(dest)

        # Written next to the database first, so the swap below is one rename.
        staged = db_path.with_name(f".{db_path.name}.restore-{stamp}")
        restored = _write_atomically(staged, copy_with_new_epoch)
    finally:
        source.close()
    try:
        aside = _move_aside(db_path, stamp)
        os.replace(staged, db_path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    _fsync_dir(db_path.parent)
    return Copied(db_path, restored.bytes, restored.db_epoch, restored.schema_version, restored.events), aside


def _check_target(db_path: Path, target: Path) -> None:
    if not target.is_absolute():
        raise BackupError(f"the backup path must be absolute, got {target}")
    if target.is_dir():
        raise BackupError(f"{target} is a directory; name the backup file")
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BackupError(f"directory {target.parent} is not writable")
    live = {db_path.resolve(), *(db_path.resolve().with_name(db_path.name + s) for s in SIDE_FILES)}
    if target.resolve() in live:
        raise BackupError(f"{target} is the live database (or one of its files); choose another path")


def _copy(source: apsw.Connection, dest: apsw.Connection) -> None:
    with dest.backup("main", source, "main") as step:
        while not step.done:
            step.step(STEP_PAGES)


def _write_atomically(target: Path, fill: Callable[[apsw.Connection], None]) -> Copied:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        dest = apsw.Connection(tmp_name)
        try:
            fill(dest)
            # The copy inherits WAL mode from the source's header: one file needs DELETE.
            dest.execute("PRAGMA journal_mode=DELETE").fetchall()
            copied = _describe(dest, target)
        finally:
            dest.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        for name in (tmp_name, *(tmp_name + s for s in SIDE_FILES)):
            Path(name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return Copied(target, target.stat().st_size, copied.db_epoch, copied.schema_version, copied.events)


def _describe(conn: apsw.Connection, path: Path) -> Copied:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if rows != ["ok"]:
        raise BackupError(f"integrity_check failed on {path}: " + "; ".join(rows[:5]))
    epoch = meta.get(conn, "db_epoch")
    if not epoch:
        raise BackupError(f"{path} has no meta.db_epoch: not an aod database")
    return Copied(path, 0, epoch, meta.get(conn, "schema_version"), events.count(conn))


def _move_aside(db_path: Path, stamp: str) -> list[Path]:
    """Rename the current database (and whatever WAL is left) to `<name>.before-restore-<stamp>`."""
    if not db_path.exists():
        return []
    # Fold the WAL in first, so the file kept aside is complete on its own; a damaged file (or
    # one another process still has open) may refuse, and then its WAL moves along under the
    # matching name, where SQLite still finds it.
    with contextlib.suppress(apsw.Error):
        conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READWRITE)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            conn.execute("PRAGMA journal_mode=DELETE").fetchall()
        finally:
            conn.close()
    aside = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
    moved = []
    for suffix in ("", *SIDE_FILES):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            dst = Path(f"{aside}{suffix}")
            os.replace(src, dst)
            moved.append(dst)
    return moved


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
