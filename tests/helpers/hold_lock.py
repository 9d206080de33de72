"""Child process that takes a data dir's lock, says so, and sleeps until killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from aod.storage.lock import DataDirLock

lock = DataDirLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(600)
