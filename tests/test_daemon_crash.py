"""SIGKILL the daemon during sustained concurrent ingest: every acknowledged uid survives once."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections import Counter
from pathlib import Path

from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon, request

CLIENTS = 16


def test_every_acknowledged_event_survives_sigkill(data_dir: Path, aod_env: dict[str, str]) -> None:
    daemon = Daemon(data_dir, aod_env).start()
    base = hook_payload("PostToolUse.bash")
    acked: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def client(c: int) -> None:
        n = 0
        while True:
            uid = f"c{c}-{n}"
            payload = base | {"tool_use_id": uid, "session_id": f"agent-{c % 4}"}
            try:
                reply = request(daemon.socket, "POST", "/v1/events", {"uid": uid, "agent": "claude-code", "payload": payload}, timeout=5)
            except OSError:
                return  # the daemon is gone
            if reply.status == 202 and reply.body["accepted"] == 1:
                with lock:
                    acked.append(uid)
                    if len(acked) >= 1500:
                        enough.set()
            n += 1

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    assert enough.wait(60), f"only {len(acked)} events acknowledged"
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    for t in threads:
        t.join(10)

    daemon.start()  # recovery: WAL replay, stale socket replaced
    try:
        with sqlite3.connect(f"file:{data_dir / 'aod.db'}?mode=ro", uri=True) as c:
            stored = Counter(uid for (uid,) in c.execute("SELECT uid FROM events"))
        missing = [uid for uid in acked if uid not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost: {missing[:5]}"
        assert all(stored[uid] == 1 for uid in acked)
        # The daemon takes traffic again after the crash.
        again = {"uid": "after", "agent": "claude-code", "payload": base | {"tool_use_id": "after"}}
        assert daemon.post("/v1/events", again).body["accepted"] == 1
    finally:
        daemon.stop()
