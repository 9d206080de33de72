"""The restart matrix: the daemon is killed (SIGKILL) or stopped (SIGTERM) at each point of the
reaction pipeline, restarted, and shown the same facts again. Exactly one nudge per signature,
exactly one page per escalation, and no page lost.

The daemon pauses at a point through the AOD_FAULT_PAUSE test seam (aod/faults.py),
so the signal lands exactly there, not somewhere near it.
"""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from tests.helpers import gh_standin
from tests.helpers.agent_world import FAST, World
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import Receiver

SIGNALS = [pytest.param(signal.SIGKILL, id="SIGKILL"), pytest.param(signal.SIGTERM, id="SIGTERM")]
URL = "https://ci.example/aaa111/unit"


def red_pr() -> list[dict[str, object]]:
    return [gh_standin.pr(7, "aaa111", [gh_standin.check_run("unit", "FAILURE", URL)])]


def paused_at(d: Daemon, point: str) -> bool:
    return f'"msg":"fault pause","point":"{point}"' in d.log.read_text(errors="replace")


def stop(d: Daemon, sig: signal.Signals) -> None:
    code = d.stop(sig)
    # SIGTERM is a graceful stop: exit 0 (within the 5 s DESIGN allows; Daemon.stop waits 10).
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)


def polls_after(world: World, n: int) -> None:
    """Let the observer see the same facts `n` more times (and the engine react to them)."""
    seen = len(gh_standin.calls(world.gh_state))
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= seen + n, message=f"{n} more gh polls")
    time.sleep(0.3)


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("point", ["nudge-decided", "nudge-typed", "nudge-sent"])
def test_one_nudge_per_signature_across_a_restart(world: World, point: str, sig: signal.Signals) -> None:
    world.start_pane()
    gh_standin.record(world.gh_state, red_pr())
    first = world.daemon(env={"AOD_FAULT_PAUSE": point})
    world.adopt_session(first)
    wait_for(lambda: paused_at(first, point), message=f"pause at {point}")
    # nudge-typed: the text is in the pane but the row does not say so: the marker tells.
    expected_before = 0 if point == "nudge-decided" else 1
    assert world.pane_text().count(URL) == expected_before
    if point == "nudge-typed":
        assert world.query("SELECT status, typing_since IS NOT NULL FROM nudges") == [("pending", 1)]
    stop(first, sig)

    second = world.daemon()
    wait_for(lambda: world.pane_text().count(URL) >= 1, message="the nudge, once")
    polls_after(world, 6)
    assert world.pane_text().count(URL) == 1
    assert world.pane_text().count("[aod nudge #1]") == 1
    rows = world.query("SELECT status, attempts, typing_since FROM nudges")
    assert rows == [("sent", 1, None)]
    assert world.query("SELECT attempts, last_signature IS NOT NULL FROM reaction_trackers") == [(1, 1)]
    second.stop()


def test_a_send_cut_off_before_the_text_reached_the_pane_is_typed_again(world: World) -> None:
    world.start_pane()
    gh_standin.record(world.gh_state, red_pr())
    first = world.daemon(env={"AOD_FAULT_PAUSE": "nudge-decided"})
    world.adopt_session(first)
    wait_for(lambda: paused_at(first, "nudge-decided"), message="pause")
    stop(first, signal.SIGKILL)
    # As if the daemon had died after marking the nudge as being typed, before tmux got it.
    with sqlite3.connect(world.data_dir / "aod.db") as c:
        c.execute("UPDATE nudges SET typing_since = created_at")
    assert world.pane_text().count(URL) == 0

    second = world.daemon()
    wait_for(lambda: world.query("SELECT status FROM nudges") == [("sent",)], message="sent")
    polls_after(world, 3)
    assert world.pane_text().count(URL) == 1 and world.pane_text().count("[aod nudge #1]") == 1
    second.stop()


PAGE_CONFIG = FAST + """
[reactions.ci-failed]
retries = 0
[notifiers.hook]
type = "webhook"
url = "{url}"
backoff = "0.2s"
[routing]
urgent = ["hook"]
"""


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("point", ["escalation-recorded", "delivery-sent"])
def test_one_page_per_escalation_across_a_restart(world: World, point: str, sig: signal.Signals) -> None:
    receiver = Receiver(fail_first=2).start()
    try:
        config = PAGE_CONFIG.format(url=receiver.url)
        gh_standin.record(world.gh_state, red_pr())
        first = world.daemon(config, env={"AOD_FAULT_PAUSE": point})
        sid = world.adopt_session(first)
        wait_for(lambda: paused_at(first, point), message=f"pause at {point}")
        assert len(receiver.accepted) == (0 if point == "escalation-recorded" else 1)
        stop(first, sig)

        second = world.daemon(config)
        wait_for(lambda: receiver.accepted, timeout=20, message="the page")
        polls_after(world, 6)
        escalations = world.query("SELECT id, session_id, reaction FROM escalations")
        assert len(escalations) == 1 and escalations[0][1:] == (sid, "ci-failed")
        assert len(receiver.pages_for(escalations[0][0])) == 1
        assert len(receiver.accepted) == 1
        # Two refusals, then the page: every attempt is recorded on the one delivery row.
        assert [a["status"] for a in receiver.attempts] == [503, 503, 200]
        assert world.query("SELECT status, attempts, sent_at IS NOT NULL FROM deliveries") == [("sent", 3, 1)]
        assert len({a["idempotency_key"] for a in receiver.attempts}) == 1
        second.stop()
    finally:
        receiver.stop()


def test_the_escalate_after_timer_keeps_its_first_start_across_a_restart(world: World) -> None:
    world.start_pane()
    gh_standin.record(world.gh_state, red_pr())
    first = world.daemon(FAST + '[reactions.ci-failed]\nretries = 5\nescalate_after = "3s"\n')
    world.adopt_session(first)
    wait_for(lambda: world.query("SELECT status FROM nudges") == [("sent",)], message="first nudge sent")
    (started,) = world.query("SELECT first_at FROM reaction_trackers")[0]
    stop(first, signal.SIGKILL)
    time.sleep(3.5)  # the timer falls due while no daemon runs

    restarted = time.time()
    second = world.daemon(FAST + '[reactions.ci-failed]\nretries = 5\nescalate_after = "3s"\n')
    wait_for(lambda: world.query("SELECT id FROM escalations"), message="escalation")
    # Due at the original start + 3 s, which had passed: it fires right after the restart, not
    # 3 s after it, and the tracker still names the original start.
    assert time.time() - restarted < 2.7  # a restarted timer: 3 s; the slack is the daemon's start under load
    assert world.query("SELECT first_at, escalated_at IS NOT NULL FROM reaction_trackers") == [(started, 1)]
    (message,) = world.query("SELECT message FROM escalations")[0]
    assert "unresolved for" in message and URL in message
    assert world.pane_text().count(URL) == 1  # nudged once before; the timer paged instead of nudging again
    second.stop()
