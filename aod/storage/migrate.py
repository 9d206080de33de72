"""Schema migrations with yoyo, on the stdlib sqlite3 driver.

Run before any apsw connection to the file exists: two SQLite libraries in one process must
never hold the same file open at once (their POSIX locks would clobber each other).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_SOURCE = "package:aod:migrations"


@dataclass(frozen=True)
class MigrationResult:
    applied: tuple[str, ...]
    schema_version: str


def migrations_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "migrations"


def migration_ids() -> list[str]:
    return sorted(p.stem for p in migrations_dir().glob("*.sql") if not p.name.endswith(".rollback.sql"))


def migrate(db_path: Path, on_pending: Callable[[], None] | None = None) -> MigrationResult:
    """Apply every pending migration to `db_path` (created if missing) and close it again.

    `on_pending` is called before applying, only when there is something to apply (a long
    migration must not look like a hung start to a service manager)."""
    from yoyo import get_backend, read_migrations

    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    backend = get_backend(f"sqlite:///{db_path}")
    try:
        migrations = read_migrations(MIGRATIONS_SOURCE)
        with backend.lock():
            pending = backend.to_apply(migrations)
            if pending and on_pending is not None:
                on_pending()
            backend.apply_migrations(pending)
        applied = tuple(m.id for m in pending)
    finally:
        backend.connection.close()
    version = max(m.id for m in migrations)
    _record_schema_version(db_path, version)
    return MigrationResult(applied=applied, schema_version=version)


def _record_schema_version(db_path: Path, version: str) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (version,),
        )
    finally:
        conn.close()
