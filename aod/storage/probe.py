"""While the database cannot be written, try a small write every second.

Without it a full disk that got space back would keep /readyz at 503 until some client wrote,
and a client that trusts /readyz would never write. The write goes to `meta`, which has no
change_log trigger, and is undone in the same transaction, so the stream and the file's content
do not change; the page is still written, which is what proves the disk takes writes again.
"""

from __future__ import annotations

import apsw

from aod.storage.database import Database

PROBE_INTERVAL = 1.0
_KEY = "storage_probe"


class StorageProbe:
    """The job: asleep while the database takes writes (an idle daemon must not wake every
    second); the health state wakes it, from the thread that met the error, when writes start
    failing (the daemon points `db.health.on_degraded` at the job's `wake_threadsafe`)."""

    def __init__(self, db: Database, interval: float = PROBE_INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._waited = False  # an interval passed since writes began failing

    async def step(self) -> float | None:
        if not self._db.health.degraded:
            self._waited = False
            return None
        if self._waited:
            await probe(self._db)
            if not self._db.health.degraded:
                self._waited = False
                return None
        self._waited = True
        return self._interval


async def probe(db: Database) -> bool:
    """One probe write; the writer reports its outcome to `db.health`. True when it committed."""
    try:
        await db.write(_touch)
    except Exception:  # the writer recorded why; the next interval tries again
        return False
    return True


def _touch(conn: apsw.Connection) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '')", (_KEY,))
    conn.execute("DELETE FROM meta WHERE key = ?", (_KEY,))
