"""A database migrated once per test run and copied wherever a test needs a fresh one: a
migration's transactions and fsyncs cost 0.1 s to 2 s on a busy machine, a copy well under a
millisecond. Tests of migrating itself (upgrades, a pending migration, a foreign or full data
dir) start from nothing instead."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import apsw

from aod.storage import meta
from aod.storage.migrate import migrate

_template: Path | None = None


def migrated_copy(dest: Path) -> Path:
    """A database at `dest` as `aod serve` would migrate it there: the newest schema, mode 0600,
    and an epoch of its own (two copies are two databases, as two migrations would be)."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="aod-template-"))
        atexit.register(shutil.rmtree, folder, True)
        migrate(folder / "aod.db")
        _template = folder / "aod.db"
    shutil.copyfile(_template, dest)
    os.chmod(dest, 0o600)
    conn = apsw.Connection(str(dest))
    try:
        meta.new_db_epoch(conn)
    finally:
        conn.close()
    return dest
