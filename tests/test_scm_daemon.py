"""PR observation against a real daemon: the API, the `gh` observer, its failures and its limits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from tests.helpers import gh_standin
from tests.helpers.agent_world import BRANCH, FAST, World
from tests.helpers.waiting import wait_for

URL = "https://github.com/acme/widget/pull/7"


def observation(**kw: Any) -> dict[str, Any]:
    return {"url": URL, "number": 7, "state": "open", "draft": False, "review_decision": None,
            "mergeability": "unknown", "head_sha": "abc", "title": "Widget", "checks": [], **kw}


def test_posted_observations_walk_the_status_ladder(world: World) -> None:
    d = world.daemon()
    sid = world.adopt_session(d, cwd=world.root)  # not a checkout: the observer leaves it alone
    steps = [
        (observation(), "pr_open"),
        (observation(draft=True), "draft"),
        (observation(review_decision="review_required"), "review_pending"),
        (observation(checks=[{"name": "unit", "status": "failed", "url": "https://ci/1"}]), "ci_failed"),
        (observation(review_decision="changes_requested", checks=[{"name": "unit", "status": "in_progress"}],
                     comments=[{"comment_id": 11, "author": "amy", "path": "a.py", "line": 2, "body": "Rename"}]),
         "changes_requested"),
        (observation(review_decision="approved", checks=[{"name": "unit", "status": "passed"}]), "approved"),
        (observation(review_decision="approved", mergeability="mergeable", checks=[{"name": "unit", "status": "passed"}]),
         "mergeable"),
    ]
    for body, status in steps:
        reply = d.post(f"/v1/sessions/{sid}/pr", body)
        assert reply.status == 200, reply.body
        assert reply.body["session"] == {"id": sid, "status": status}
        assert reply.body["pr"]["url"] == URL
        assert d.get(f"/v1/sessions/{sid}").body["status"] == status
    detail = d.get(f"/v1/sessions/{sid}").body
    (pr,) = detail["prs"]
    assert (pr["state"], pr["review_decision"], pr["mergeability"], pr["ci_state"]) == ("open", "approved", "mergeable", "passing")
    assert [(c["name"], c["commit_sha"], c["status"]) for c in pr["checks"]] == [("unit", "abc", "passed")]
    # Comments were observed once and not since: they stay.
    assert [(c["comment_id"], c["body"]) for c in pr["comments"]] == [("11", "Rename")]

    merged = d.post(f"/v1/sessions/{sid}/pr", observation(state="merged", review_decision="approved"))
    assert merged.body["session"]["status"] == "merged"
    detail = d.get(f"/v1/sessions/{sid}").body
    assert (detail["termination_reason"], detail["status"]) == ("merged", "merged") and detail["ended_at"]
    # The status changes reached the change log, so the stream sees them.
    statuses = [s for (s,) in world.query(
        "SELECT json_extract(data, '$.status') FROM change_log WHERE entity = 'session' AND entity_id = ?", sid)]
    assert statuses[-2:] == ["mergeable", "merged"]
    assert world.query("SELECT count(*) FROM change_log WHERE entity = 'check'")[0][0] >= 3
    d.stop()


def test_a_bad_observation_is_a_clear_400_and_changes_nothing(world: World) -> None:
    d = world.daemon()
    sid = world.adopt_session(d, cwd=world.root)
    assert d.post(f"/v1/sessions/{sid}/pr", observation()).status == 200
    cases = [
        (observation(state="opened"), 400, "invalid_observation", 'state: expected one of "open", "closed", "merged"'),
        (observation(checks=[{"name": "unit", "status": "red"}]), 400, "invalid_observation", "checks[0].status"),
        (observation(number=None), 400, "invalid_observation", "number: required"),
        ("{not json", 400, "invalid_json", "not valid UTF-8 JSON"),
    ]
    for body, status, code, message in cases:
        reply = d.post(f"/v1/sessions/{sid}/pr", body)
        assert reply.status == status and reply.body["error"]["code"] == code and message in reply.body["error"]["message"]
    wrong_type = d.post(f"/v1/sessions/{sid}/pr", b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415 and wrong_type.body["error"]["code"] == "unsupported_media_type"
    unknown = d.post("/v1/sessions/nope-1/pr", observation())
    assert unknown.status == 404 and unknown.body["error"] == {"code": "not_found", "message": "no session 'nope-1'"}
    assert d.get(f"/v1/sessions/{sid}").body["status"] == "pr_open"
    assert world.query("SELECT count(*) FROM pr_checks")[0][0] == 0
    d.stop()


def test_the_observer_asks_gh_about_the_branch_in_the_workspace(world: World) -> None:
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "abc", [gh_standin.check_run("unit", None)], draft=True)])
    d = world.daemon()
    sid = world.adopt_session(d)
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["status"] == "draft", message="draft from gh")
    call = gh_standin.calls(world.gh_state)[0]
    assert call["argv"][:5] == ["pr", "list", "--head", BRANCH, "--state"]
    assert Path(call["cwd"]).resolve() == world.repo.resolve()
    (pr,) = d.get(f"/v1/sessions/{sid}").body["prs"]
    assert (pr["number"], pr["head_sha"], pr["ci_state"], pr["draft"]) == (7, "abc", "pending", True)
    d.stop()


def test_review_threads_are_fetched_while_changes_are_requested(world: World) -> None:
    threads = {"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": [
        {"isResolved": False, "path": "a.py", "line": 9, "comments": {"nodes": [
            {"id": "PRRC_1", "author": {"login": "amy"}, "body": "Handle the empty case", "path": "a.py", "line": 9}]}},
    ]}}}}}
    (world.gh_state / "review-threads.json").write_text(json.dumps(threads))
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "abc", [], review="CHANGES_REQUESTED")])
    d = world.daemon()
    sid = world.adopt_session(d)
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["prs"], message="PR recorded")
    (pr,) = d.get(f"/v1/sessions/{sid}").body["prs"]
    assert [(c["comment_id"], c["author"], c["path"], c["line"], c["body"]) for c in pr["comments"]] == [
        ("PRRC_1", "amy", "a.py", 9, "Handle the empty case")]
    graphql = [c for c in gh_standin.calls(world.gh_state) if c["argv"][:2] == ["api", "graphql"]]
    assert graphql and "number=7" in graphql[0]["argv"]
    d.stop()


def test_a_failing_gh_changes_nothing_and_backs_off(world: World) -> None:
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "abc", [gh_standin.check_run("unit", "SUCCESS")])])
    d = world.daemon()
    sid = world.adopt_session(d)
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["status"] == "review_pending", message="first observation")
    before = d.get(f"/v1/sessions/{sid}").body["prs"]

    (world.gh_state / "fail").write_text("HTTP 502: Bad Gateway (https://api.github.com/graphql)")
    gh_standin.record(world.gh_state, [gh_standin.pr(7, "def", [gh_standin.check_run("unit", "FAILURE")])])
    start = len(gh_standin.calls(world.gh_state))
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= start + 4, timeout=20, message="four failed calls")
    failed = gh_standin.calls(world.gh_state)[start:start + 4]
    gaps = [b["start"] - a["start"] for a, b in itertools.pairwise(failed)]
    # 0.2 s interval doubling per failure: 0.4, 0.8, 1.6 s, plus each call's own time.
    assert gaps[0] < gaps[1] < gaps[2] and gaps[2] >= 1.5 and gaps[2] > 1.8 * gaps[0], gaps
    assert d.get(f"/v1/sessions/{sid}").body["prs"] == before
    assert d.get(f"/v1/sessions/{sid}").body["status"] == "review_pending"
    assert "gh fetch failed; nothing recorded" in d.log.read_text() and "Bad Gateway" in d.log.read_text()

    (world.gh_state / "fail").unlink()
    wait_for(lambda: d.get(f"/v1/sessions/{sid}").body["status"] == "ci_failed", timeout=10, message="recovery")
    d.stop()


def test_at_most_max_concurrent_gh_calls_run_at_once(world: World) -> None:
    (world.gh_state / "delay").write_text("0.3")
    d = world.daemon(FAST + "max_concurrent = 2\n")
    for n in range(5):
        world.adopt_session(d, agent_session_id=f"agent-{n}")
    wait_for(lambda: len(gh_standin.calls(world.gh_state)) >= 15, timeout=30, message="15 calls")
    calls = gh_standin.calls(world.gh_state)
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    running, most = 0, 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2
    d.stop()
