"""CI reactions end to end: the `gh` stand-in reports checks, aod types nudges into a real tmux
pane, and pages the human through a real local webhook when nudging stops helping."""

from __future__ import annotations

import json

from tests.helpers import gh_standin
from tests.helpers.agent_world import FAST, World
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import Receiver


def failing(sha: str, *names: str) -> list[dict[str, object]]:
    checks = [gh_standin.check_run(n, "FAILURE", f"https://ci.example/{sha}/{n}") for n in names]
    return [gh_standin.pr(7, sha, [*checks, gh_standin.check_run("lint", "SUCCESS")])]


def test_ci_failure_nudges_once_per_commit_then_the_brake_pages_and_green_clears(world: World) -> None:
    receiver = Receiver(fail_first=0).start()
    try:
        _run_ci_story(world, receiver)
    finally:
        receiver.stop()


def _run_ci_story(world: World, receiver: Receiver) -> None:
    world.start_pane()
    # retries is high so that only the CI brake (three red runs of `unit`) can page.
    d = world.daemon(FAST + f"""
[reactions.ci-failed]
retries = 10
[notifiers.hook]
type = "webhook"
url = "{receiver.url}"
[routing]
urgent = ["hook"]
""")
    sid = world.adopt_session(d)
    gh_standin.record(world.gh_state, failing("aaa111", "unit"))

    # The first red commit: one nudge, with the failing check's name and URL, in the pane.
    wait_for(lambda: world.pane_text().count("https://ci.example/aaa111/unit") == 1, message="first nudge")
    session = d.get(f"/v1/sessions/{sid}").body
    assert session["status"] == "ci_failed"
    pane = world.pane_text()
    assert "CI is failing on your pull request" in pane and "- unit: https://ci.example/aaa111/unit" in pane
    assert "lint" not in pane  # a passing check is not the agent's business
    assert "[aod nudge #1]" in pane

    # The same failure, observed again and again: no second nudge.
    polls = len(gh_standin.calls(world.gh_state))
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= polls + 5, message="five more polls")
    assert world.pane_text().count("https://ci.example/aaa111/unit") == 1
    tracker = d.get(f"/v1/sessions/{sid}").body["trackers"][0]
    assert (tracker["reaction"], tracker["attempts"], tracker["resolved_at"]) == ("ci-failed", 1, None)

    # A new failing commit: a new nudge.
    gh_standin.record(world.gh_state, failing("bbb222", "unit"))
    wait_for(lambda: "https://ci.example/bbb222/unit" in world.pane_text(), message="second nudge")

    # The third red run of `unit` in a row: the brake pages the human instead of nudging.
    gh_standin.record(world.gh_state, failing("ccc333", "unit"))
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["escalations"], message="escalation")
    escalation = d.get(f"/v1/sessions/{sid}").body["escalations"][0]
    assert escalation["reaction"] == "ci-failed" and escalation["priority"] == "urgent"
    assert "unit failed on the last 3 runs" in escalation["message"]
    assert "https://ci.example/ccc333/unit" in escalation["message"]
    wait_for(lambda: receiver.accepted, message="page delivered")
    page = receiver.accepted[0]
    assert page["escalation"]["id"] == escalation["id"] and page["session"]["id"] == sid
    assert "https://ci.example/ccc333/unit" not in world.pane_text()

    # Green: the tracker resolves, the status leaves ci_failed.
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "ddd444", [gh_standin.check_run("unit", "SUCCESS")])])
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["trackers"][0]["resolved_at"], message="tracker resolved")
    body = d.get(f"/v1/sessions/{sid}").body
    assert body["status"] == "review_pending"
    assert world.pane_text().count("CI is failing on your pull request") == 2
    assert len(receiver.accepted) == 1
    nudges = body["trackers"][0]["nudges"]
    assert [n["status"] for n in nudges] == ["sent", "sent"]


def test_changes_requested_nudges_with_the_review_comments_once_per_comment_set(world: World) -> None:
    world.start_pane()

    def threads(*comments: tuple[str, str]) -> None:
        nodes = [{"isResolved": False, "path": "app.py", "line": 12,
                  "comments": {"nodes": [{"id": cid, "author": {"login": "amy"}, "body": body, "path": "app.py",
                                          "line": 12}]}} for cid, body in comments]
        doc = {"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": nodes}}}}}
        tmp = world.gh_state / "threads.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(world.gh_state / "review-threads.json")

    threads(("C1", "Handle the empty list"))
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "aaa111", [], review="CHANGES_REQUESTED")])
    d = world.daemon()
    sid = world.adopt_session(d)
    wait_for(lambda: "Handle the empty list" in world.pane_text(), message="nudge with the comment")
    assert "- amy on app.py:12: Handle the empty list" in world.pane_text()
    assert d.get(f"/v1/sessions/{sid}").body["status"] == "changes_requested"

    polls = len(gh_standin.calls(world.gh_state))
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= polls + 6, message="more polls")
    assert world.pane_text().count("A reviewer requested changes") == 1

    threads(("C1", "Handle the empty list"), ("C2", "And add a test for it"))
    wait_for(lambda: "And add a test for it" in world.pane_text(), message="nudge for the new comment set")
    assert world.pane_text().count("A reviewer requested changes") == 2
    d.stop()


def test_a_session_without_a_pane_gets_its_human_paged_instead(world: World) -> None:
    gh_standin.record(world.gh_state, failing("aaa111", "unit"))
    d = world.daemon()
    sid = world.adopt_session(d, pane="")  # adopted outside tmux: nothing to type into
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["escalations"], message="escalation")
    (escalation,) = d.get(f"/v1/sessions/{sid}").body["escalations"]
    assert "the nudge could not reach the agent: the session has no tmux pane to type into" in escalation["message"]
    (tracker,) = d.get(f"/v1/sessions/{sid}").body["trackers"]
    assert [(n["status"], n["attempts"]) for n in tracker["nudges"]] == [("failed", 1)]
    d.stop()
