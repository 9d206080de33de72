"""The session page's replay controls in a real Chromium against a real `aod serve`: play shows the
events with their timing, pause stops them, play goes on without repeating, speed and seek."""

from __future__ import annotations

import time

from tests.conftest import hook_payload
from tests.helpers.browser import RecordedPage, login
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for

# Four prompts 0 s, 1 s, 2 s and 40 s apart (the last gap is shortened to max_gap, 10 s).
STAMPS = ["2026-06-01T08:00:00Z", "2026-06-01T08:00:01Z", "2026-06-01T08:00:02Z", "2026-06-01T08:00:42Z"]


def _shown(page: RecordedPage) -> list[str]:
    ids: list[str] = page.evaluate(
        "[...document.querySelectorAll('[data-replay-event]')].map((e) => e.dataset.replayEvent)")
    return ids


def test_play_pause_speed_and_seek(daemon: Daemon, page: RecordedPage) -> None:
    items = [{"agent": "claude-code", "session": "play-1", "occurred_at": at,
              "payload": hook_payload("UserPromptSubmit", prompt=f"prompt {i}")} for i, at in enumerate(STAMPS)]
    assert daemon.post("/v1/events", {"events": items}).status == 202
    ids = [str(e["id"]) for e in daemon.get("/v1/sessions/play-1/events?order=asc").body["items"]]

    base = login(page, daemon)
    page.goto(f"{base}/sessions/play-1")
    page.get_by_label("replay speed").select_option("2")
    started = time.monotonic()
    page.get_by_label("play replay").click()
    wait_for(lambda: len(_shown(page)) >= 2, timeout=10, interval=0.02, message="two replayed events")
    # The second event is 1 s after the first: at 2x, half a second.
    assert time.monotonic() - started >= 0.45
    page.get_by_label("pause replay").click()
    paused = _shown(page)
    page.wait_for_timeout(800)  # at 2x the third event would have come by now
    assert _shown(page) == paused

    # Play again: on from the next event, nothing twice; at 50x the 10 s of the shortened gap is 0.2 s.
    page.get_by_label("replay speed").select_option("50")
    page.get_by_label("play replay").click()
    wait_for(lambda: page.get_by_role("status").filter(has_text="ended").count() == 1, timeout=10,
             interval=0.02, message="the replay ended")
    # Newest first on the page.
    assert _shown(page) == list(reversed(ids))
    assert page.locator(f'[data-replay-event="{ids[3]}"]').inner_text().find("gap shortened") >= 0

    # Seek to the end of the span: only the last event replays.
    slider = page.get_by_label("seek replay")
    slider.fill("1000")
    assert _shown(page) == []
    page.get_by_label("play replay").click()
    wait_for(lambda: page.get_by_role("status").filter(has_text="ended").count() == 1 and _shown(page) == [ids[3]],
             timeout=10, interval=0.02, message="the replay from the seek point ended")
    page.screenshot("session-replay")
    page.assert_no_errors()
