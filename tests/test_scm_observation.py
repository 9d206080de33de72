"""PR observations: the DESIGN §5 shape, the CI state of a commit, and gh's JSON read tolerantly."""

from __future__ import annotations

from typing import Any

import pytest

from aod.scm.gh_parse import GhOutputError, check_from_rollup, prs_from_list, thread_comments
from aod.scm.observation import InvalidObservation, ci_state, parse_observation
from aod.scm.observer import retry_delay
from tests.helpers import gh_standin

GOOD: dict[str, Any] = {
    "url": "https://github.com/acme/widget/pull/7", "number": 7, "state": "open", "draft": False,
    "review_decision": "changes_requested", "mergeability": "mergeable", "head_sha": "abc", "title": "T",
    "checks": [{"name": "unit", "status": "failed", "commit_sha": "abc", "url": "https://ci/1"}],
    "comments": [{"comment_id": "c1", "author": "amy", "path": "a.py", "line": 3, "body": "no", "resolved": False}],
}


def test_a_full_observation_is_kept_and_its_ci_state_derived() -> None:
    obs = parse_observation(GOOD)
    assert obs["ci_state"] == "failing"
    assert obs["checks"] == GOOD["checks"] and obs["comments"] == GOOD["comments"]
    assert {k: obs[k] for k in ("url", "number", "state", "review_decision", "mergeability", "head_sha")} == {
        k: GOOD[k] for k in ("url", "number", "state", "review_decision", "mergeability", "head_sha")}


def test_optional_fields_default_and_enums_are_case_insensitive() -> None:
    obs = parse_observation({"url": "u", "number": 1, "state": "MERGED", "head_sha": "s",
                             "checks": [{"name": "unit", "status": "PASSED"}], "extra": "ignored"})
    assert obs["state"] == "merged" and obs["draft"] is False and obs["review_decision"] is None
    assert obs["checks"] == [{"name": "unit", "status": "passed", "commit_sha": "s", "url": None}]
    assert obs["comments"] is None  # not observed: stored comments stay


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": ""}, "url: expected a non-empty string"),
        ({"url": None}, "url: required"),
        ({"number": "7"}, "number: expected an integer from 1 to 2^63-1, got '7'"),
        ({"number": 0}, "number: expected an integer from 1 to 2^63-1"),
        ({"number": 2**63}, "number: expected an integer from 1 to 2^63-1"),
        ({"state": "draft"}, 'state: expected one of "open", "closed", "merged", got \'draft\''),
        ({"state": None}, "state: required"),
        ({"draft": "yes"}, "draft: expected true or false"),
        ({"review_decision": "lgtm"}, "review_decision: expected one of"),
        ({"mergeability": 1}, "mergeability: expected one of"),
        ({"checks": {}}, "checks: expected an array"),
        ({"checks": [{"name": "unit", "status": "red"}]}, "checks[0].status: expected one of"),
        ({"checks": [{"status": "failed"}]}, "checks[0].name: required"),
        ({"checks": ["unit"]}, "checks[0]: expected an object"),
        ({"head_sha": None, "checks": [{"name": "u", "status": "failed"}]}, "checks[0].commit_sha: required when"),
        ({"comments": [{"body": "x"}]}, "comments[0].comment_id: expected a non-empty string or an integer"),
        ({"comments": [{"comment_id": 1, "line": -1}]}, "comments[0].line: expected an integer from 0 to 2^63-1"),
        ({"comments": [{"comment_id": 1, "line": 2**64 - 1}]}, "comments[0].line: expected an integer from 0 to 2^63-1"),
        ({"comments": [{"comment_id": 1}, {"comment_id": "1"}]}, "comments: comment_id must be unique"),
    ],
)
def test_invalid_fields_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidObservation) as err:
        parse_observation({**GOOD, **change})
    assert message in str(err.value)


def test_a_non_object_is_refused() -> None:
    with pytest.raises(InvalidObservation, match="body: expected a PR observation object"):
        parse_observation([GOOD])


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        ([], None),
        (["passed", "skipped"], "passing"),
        (["passed", "queued"], "pending"),
        (["in_progress", "failed"], "failing"),
        (["cancelled"], "pending"),
        (["cancelled", "passed"], "passing"),
    ],
)
def test_ci_state_of_the_head_commit(statuses: list[str], state: str | None) -> None:
    checks = [{"name": f"c{i}", "status": s, "commit_sha": "head"} for i, s in enumerate(statuses)]
    old = [{"name": "c0", "status": "failed", "commit_sha": "old"}]  # an older commit does not count
    assert ci_state(checks + old, "head") == state


def test_one_check_name_twice_on_a_commit_counts_once_with_its_worse_result() -> None:
    obs = parse_observation({**GOOD, "checks": [{"name": "unit", "status": "passed"},
                                                {"name": "unit", "status": "failed"}]})
    assert [c["status"] for c in obs["checks"]] == ["failed"]


# --- gh's JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "status"),
    [
        ({"name": "u", "status": "COMPLETED", "conclusion": "SUCCESS"}, "passed"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "NEUTRAL"}, "passed"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "FAILURE"}, "failed"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "TIMED_OUT"}, "failed"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "SKIPPED"}, "skipped"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "CANCELLED"}, "cancelled"),
        ({"name": "u", "status": "COMPLETED", "conclusion": "SOMETHING_NEW"}, "cancelled"),
        ({"name": "u", "status": "IN_PROGRESS", "conclusion": ""}, "in_progress"),
        ({"name": "u", "status": "WAITING"}, "queued"),
        ({"context": "ci/legacy", "state": "ERROR", "targetUrl": "https://ci/x"}, "failed"),
        ({"context": "ci/legacy", "state": "SUCCESS"}, "passed"),
        ({"context": "ci/legacy", "state": "PENDING"}, "queued"),
    ],
)
def test_rollup_entries(item: dict[str, Any], status: str) -> None:
    check = check_from_rollup(item, "sha")
    assert check is not None and check["status"] == status and check["commit_sha"] == "sha"


def test_a_gh_pr_list_answer_becomes_valid_observations() -> None:
    reviews = [{"id": "R1", "author": {"login": "amy"}, "state": "CHANGES_REQUESTED", "body": "Please add tests"},
               {"id": "R2", "author": {"login": "bob"}, "state": "COMMENTED", "body": "nice"}]
    raw = prs_from_list([
        gh_standin.pr(7, "abc", [gh_standin.check_run("unit", "FAILURE", "https://ci/u"), {"bogus": 1}],
                      review="CHANGES_REQUESTED", mergeable="UNKNOWN", reviews=reviews),
        "not a PR",
    ])
    assert len(raw) == 1
    obs = parse_observation(raw[0])
    assert (obs["state"], obs["review_decision"], obs["mergeability"], obs["ci_state"]) == (
        "open", "changes_requested", "unknown", "failing")
    assert obs["checks"] == [{"name": "unit", "status": "failed", "commit_sha": "abc", "url": "https://ci/u"}]
    assert [(c["comment_id"], c["author"], c["body"]) for c in obs["comments"]] == [("R1", "amy", "Please add tests")]


def test_an_empty_review_decision_is_none() -> None:
    (raw,) = prs_from_list([gh_standin.pr(1, "s", [], review="")])
    assert parse_observation(raw)["review_decision"] is None


def test_gh_output_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(GhOutputError):
        prs_from_list({"message": "Not Found"})


def test_review_threads() -> None:
    doc = {"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": [
        {"isResolved": False, "path": "a.py", "line": 4, "comments": {"nodes": [
            {"id": "C1", "author": {"login": "amy"}, "body": "Rename", "path": "a.py", "line": 4},
            {"id": "C2", "author": None, "body": "+1", "path": None, "line": None}]}},
        {"isResolved": True, "path": "b.py", "line": None, "comments": {"nodes": [{"id": "C3", "body": "ok"}]}},
    ]}}}}}
    found = thread_comments(doc)
    assert [(c["comment_id"], c["path"], c["line"], c["resolved"]) for c in found] == [
        ("C1", "a.py", 4, False), ("C2", "a.py", None, False), ("C3", "b.py", None, True)]
    with pytest.raises(GhOutputError):
        thread_comments({"errors": [{"message": "Could not resolve to a Repository"}]})


def test_retry_delay_doubles_up_to_ten_minutes() -> None:
    assert [retry_delay(60.0, n) for n in range(1, 6)] == [120.0, 240.0, 480.0, 600.0, 600.0]
    assert retry_delay(0.2, 3) == 1.6
    assert retry_delay(3600.0, 2) == 3600.0  # an interval above the cap is not shortened
