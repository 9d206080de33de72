"""Child process for the crash test: writes forever, printing each acknowledged uid.

A uid is printed only after `await db.write(...)` returned, i.e. after its commit.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aod.config import StorageConfig
from aod.storage.database import open_storage
from tests.helpers.rows import insert_event, seed_session


async def main(data_dir: Path, writers: int) -> None:
    storage = await open_storage(data_dir, StorageConfig(synchronous="normal"))
    db = storage.db
    await db.write(seed_session)
    print("ready", flush=True)
    payload = "x" * 1000

    async def writer(w: int) -> None:
        n = 0
        while True:
            uid = f"w{w}-{n}"
            await db.write(lambda c, uid=uid: insert_event(c, uid, payload))
            sys.stdout.write(uid + "\n")
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
