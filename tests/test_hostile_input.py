"""Thousands of hostile requests over both transports against a real daemon (issue 11).

No answer may be a 5xx, the daemon must live on and stop cleanly, the file must pass
`PRAGMA integrity_check`, every good item must be stored and every refused one kept in
dead_letters, exactly once.
"""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter
from functools import partial
from typing import Any

from tests.conftest import FIXTURES
from tests.helpers import rawhttp
from tests.helpers.daemon import Daemon
from tests.helpers.hostile import (
    GARBAGE,
    Generator,
    dead_letters_for,
    exchange,
    send,
)

CASES_PER_TRANSPORT = 2500


def test_hostile_input_never_answers_5xx_and_loses_nothing(daemon: Daemon) -> None:
    token = (daemon.data_dir / "token").read_text().strip()
    transports = [
        ("unix", partial(rawhttp.connect, daemon, "unix"), {}),
        ("tcp", partial(rawhttp.connect, daemon, "tcp"), {"Authorization": f"Bearer {token}"}),
    ]
    statuses: Counter[tuple[str, int]] = Counter()
    dead_letters, good_uids, server_errors = 0, set(), []
    for seed, (name, connect, auth) in enumerate(transports):
        for case in Generator(FIXTURES, seed=1100 + seed).cases(CASES_PER_TRANSPORT):
            status, body = send(connect, case, auth)
            statuses[(name, status)] += 1
            assert status > 0, f"{name}: no answer to {case.method} {case.path[:200]} {case.body!r:.300}"
            if status >= 500:
                server_errors.append(f"{name}: {case.method} {case.path[:120]} {case.body!r:.200} -> {status}")
            dead_letters += dead_letters_for(case, status, body)
            if case.good_uids:
                assert status == 202, f"{name}: a batch with good items was refused: {body!r:.300}"
                good_uids.update(case.good_uids)
        for garbage in GARBAGE:
            status, body = exchange(connect, garbage)
            if status >= 500:
                server_errors.append(f"{name}: {garbage[:80]!r} -> {status} {body!r:.200}")

    assert not server_errors, f"{len(server_errors)} answers of 5xx:\n" + "\n".join(server_errors[:20])

    # Both transports reached the handlers, and the mix was hostile: most answers refuse something.
    assert statuses[("tcp", 202)] > 100 and statuses[("unix", 202)] > 100, statuses
    assert sum(n for (_, status), n in statuses.items() if status == 400) > 500, statuses
    assert daemon.get("/healthz").status == 200
    assert daemon.stop(signal.SIGTERM) == 0

    with sqlite3.connect(daemon.data_dir / "aod.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {uid for (uid,) in db.execute("SELECT uid FROM events WHERE uid LIKE 'good-%'")}
        assert good_uids <= stored, f"{len(good_uids - stored)} good items missing"
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == dead_letters
        newest: Any = db.execute("SELECT max(last_event_at) FROM sessions").fetchone()[0]
        # No stamp from a hostile clock may sit a day or more ahead: it would freeze its session.
        assert newest is None or newest < db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 day')").fetchone()[0]
