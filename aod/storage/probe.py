"""While the database cannot be written, try a small write every second.

Without it a full disk that got space back would keep /readyz at 503 until some client wrote,
and a client that trusts /readyz would never write. The write goes to `meta`, which has no
change_log trigger, and is undone in the same transaction, so the stream and the file's content
do not change; the page is still written, which is what proves the disk takes writes again.
"""

from __future__ import annotations

import asyncio

import apsw

from aod.storage.database import Database

PROBE_INTERVAL = 1.0
_KEY = "storage_probe"


async def run(db: Database, interval: float = PROBE_INTERVAL) -> None:
    # Asleep while the database takes writes (an idle daemon must not wake every second): the
    # health state wakes it, from the thread that met the error, when writes start failing.
    loop = asyncio.get_running_loop()
    degraded = asyncio.Event()
    db.health.on_degraded = lambda: loop.call_soon_threadsafe(degraded.set)
    try:
        while True:
            if not db.health.degraded:
                degraded.clear()
                if not db.health.degraded:  # it may have failed between the look and the clear
                    await degraded.wait()
            await asyncio.sleep(interval)
            if db.health.degraded:
                await probe(db)
    finally:
        db.health.on_degraded = None


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
