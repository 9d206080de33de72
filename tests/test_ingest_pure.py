"""Pure parts of ingest and lifecycle: no database, no daemon."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aod.ingest.envelope import InvalidItem, envelope_for_raw_hook, parse_envelope
from aod.ingest.normalize import content_key, event_columns, stored_payload
from aod.lifecycle.activity import ActivityState, apply_event, transition_for
from aod.timefmt import iso_from_ns, normalize_iso
from tests.conftest import hook_payload

NOW = "2026-11-22T10:00:00.000000Z"


# --- envelope ---------------------------------------------------------------------------------


def test_envelope_fields_and_defaults() -> None:
    env = parse_envelope({"payload": {"session_id": "x"}}, received_at=NOW)
    assert (env.agent, env.occurred_at, env.session, env.tmux_pane, env.pid) == ("claude-code", NOW, None, None, None)
    assert len(env.uid) == 32
    full = parse_envelope(
        {"uid": "u1", "agent": "codex", "occurred_at": "2026-11-22T11:00:00+01:00", "session": "p-1",
         "runtime": {"tmux_pane": "%1", "pid": 99}, "payload": {}},
        received_at=NOW,
    )
    assert (full.uid, full.agent, full.occurred_at, full.session, full.tmux_pane, full.pid) == (
        "u1", "codex", "2026-11-22T10:00:00.000000Z", "p-1", "%1", 99)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_795_000_000_123_456_789, iso_from_ns(1_795_000_000_123_456_789)),
        (1_795_000_000, "2026-11-18T11:06:40.000000Z"),
        (1_795_000_000.5, "2026-11-18T11:06:40.500000Z"),
        ("2026-11-18T12:06:40+01:00", "2026-11-18T11:06:40.000000Z"),
        ("2026-11-18T09:46:40.1234567Z", None),
    ],
)
def test_occurred_at_forms(value: object, expected: str | None) -> None:
    env = parse_envelope({"occurred_at": value, "payload": {}}, received_at=NOW)
    assert env.occurred_at == (expected or env.occurred_at)
    assert len(env.occurred_at) == len(NOW)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ([], "an event must be a JSON object"),
        ({"payload": None}, "payload:"),
        ({"payload": [1]}, "payload:"),
        ({"payload": {}, "agent": ""}, "agent:"),
        ({"payload": {}, "agent": "has space"}, "agent:"),
        ({"payload": {}, "uid": 5}, "uid:"),
        ({"payload": {}, "uid": "u" * 129}, "uid:"),
        ({"payload": {}, "session": "../etc"}, "session:"),
        ({"payload": {}, "occurred_at": "soon"}, "occurred_at:"),
        ({"payload": {}, "occurred_at": False}, "occurred_at:"),
        ({"payload": {}, "runtime": "tmux"}, "runtime:"),
        ({"payload": {}, "runtime": {"pid": -1}}, "runtime.pid:"),
        ({"payload": {}, "runtime": {"pid": True}}, "runtime.pid:"),
        ({"payload": {}, "runtime": {"tmux_pane": 3}}, "runtime.tmux_pane:"),
    ],
)
def test_invalid_envelopes_name_the_field(item: object, field: str) -> None:
    with pytest.raises(InvalidItem, match=field.replace(".", r"\.")):
        parse_envelope(item, received_at=NOW)


def test_raw_hook_is_stamped_on_arrival() -> None:
    env = envelope_for_raw_hook(hook_payload("Stop"), "claude-code", received_at=NOW)
    assert env.occurred_at == NOW and env.payload["hook_event_name"] == "Stop"


# --- columns, dedup key, trimming -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "tool", "duration", "ok"),
    [
        ("PreToolUse", "PreToolUse", "Bash", None, None),
        ("PostToolUse.bash", "PostToolUse", "Bash", 4187, 1),
        ("PostToolUseFailure", "PostToolUseFailure", "Bash", 4187, 0),
        ("Notification", "Notification", None, None, None),
        ("SessionEnd", "SessionEnd", None, None, None),
    ],
)
def test_event_columns(name: str, kind: str, tool: str | None, duration: int | None, ok: int | None) -> None:
    cols = event_columns(hook_payload(name))
    assert (cols.kind, cols.tool_name, cols.duration_ms, cols.ok) == (kind, tool, duration, ok)
    assert cols.agent_session_id == "00893aaf-19fa-41d2-8238-13269b9b3ca0"


def test_columns_tolerate_odd_types() -> None:
    cols = event_columns({"hook_event_name": 7, "tool_name": ["x"], "duration_ms": "12", "session_id": None})
    assert (cols.kind, cols.tool_name, cols.duration_ms, cols.agent_session_id) == ("Unknown", None, None, None)


def test_content_key_ignores_key_order_but_not_content() -> None:
    a = {"tool_use_id": "t1", "tool_input": {"x": 1, "y": 2}}
    b = {"tool_input": {"y": 2, "x": 1}, "tool_use_id": "t1"}
    assert content_key("s", "PreToolUse", a) == content_key("s", "PreToolUse", b)
    assert content_key("s", "PreToolUse", a) != content_key("s2", "PreToolUse", a)
    assert content_key("s", "PreToolUse", a) != content_key("s", "PostToolUse", a)
    assert content_key("s", "PreToolUse", a) != content_key("s", "PreToolUse", a | {"tool_use_id": "t2"})


def test_small_payload_is_stored_verbatim() -> None:
    payload = hook_payload("PostToolUse.edit")
    stored = stored_payload(payload, 65536)
    assert not stored.trimmed and json.loads(stored.text) == payload
    assert stored.original_bytes == len(stored.text.encode())


# Bodies arrive through orjson.loads, which turns integers beyond 64 bits into floats.
@given(st.recursive(st.text() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=60),
       st.integers(min_value=512, max_value=8192))
def test_stored_payload_never_exceeds_the_cap(tree: object, cap: int) -> None:
    payload = {"hook_event_name": "PostToolUse", "session_id": "s", "data": tree, "pad": "p" * (cap * 2)}
    stored = stored_payload(payload, cap)
    assert len(stored.text.encode()) <= cap
    assert stored.trimmed
    assert json.loads(stored.text)["hook_event_name"] == "PostToolUse"


def test_many_small_fields_fall_back_to_the_identifying_skeleton() -> None:
    payload = {"hook_event_name": "X", "session_id": "s", "tool_use_id": "t", **{f"k{i}": i for i in range(5000)}}
    stored = stored_payload(payload, 1024)
    assert json.loads(stored.text) == {"hook_event_name": "X", "session_id": "s", "tool_use_id": "t"}


# --- activity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload", "activity"),
    [
        ("SessionStart", {}, "idle"),
        ("UserPromptSubmit", {}, "active"),
        ("PreToolUse", {}, "active"),
        ("PostToolUse", {}, "active"),
        ("PostToolUseFailure", {}, "active"),
        ("SubagentStart", {}, "active"),
        ("PermissionRequest", {}, "waiting_input"),
        ("Notification", {"notification_type": "permission_prompt"}, "waiting_input"),
        ("Notification", {"notification_type": "elicitation_dialog"}, "waiting_input"),
        ("Notification", {"notification_type": "agent_needs_input"}, "waiting_input"),
        ("Notification", {"notification_type": "idle_prompt"}, None),
        ("Stop", {}, "idle"),
        ("Stop", {"background_tasks": []}, "idle"),
        ("Stop", {"background_tasks": [{"id": "1", "status": "running"}]}, "active"),
        ("Stop", {"background_tasks": [{"id": "1", "status": "completed"}]}, "idle"),
        ("Stop", {"background_tasks": [{"id": "1"}]}, "active"),
        ("StopFailure", {"error": "rate_limit"}, "idle"),
        ("SessionEnd", {"reason": "logout"}, "exited"),
        ("SessionEnd", {"reason": "clear"}, None),
        ("SessionEnd", {"reason": "resume"}, None),
        ("PreCompact", {}, None),
        ("SomethingNew", {}, None),
    ],
)
def test_transition_table(kind: str, payload: dict[str, Any], activity: str | None) -> None:
    change = transition_for(kind, payload)
    assert (None if change is None else change.activity) == activity


def test_stop_failure_marks_an_error_that_the_next_prompt_clears() -> None:
    state = apply_event(ActivityState(), "StopFailure", {"error": "rate_limit"}, "2026-01-01T00:00:01.000000Z")
    assert (state.activity, state.error) == ("idle", "rate_limit")
    state = apply_event(state, "UserPromptSubmit", {}, "2026-01-01T00:00:02.000000Z")
    assert (state.activity, state.error) == ("active", None)


def test_late_older_event_does_not_regress() -> None:
    state = apply_event(ActivityState(), "PermissionRequest", {}, "2026-01-01T00:00:03.000000Z")
    state = apply_event(state, "PreToolUse", {}, "2026-01-01T00:00:02.000000Z")
    assert state.activity == "waiting_input"


def test_exit_then_newer_event_revives_but_killed_stays() -> None:
    ended = apply_event(ActivityState(), "SessionEnd", {"reason": "logout"}, "2026-01-01T00:00:01.000000Z")
    assert (ended.activity, ended.termination_reason, ended.ended_at) == ("exited", "exited", "2026-01-01T00:00:01.000000Z")
    revived = apply_event(ended, "SessionStart", {"source": "resume"}, "2026-01-01T00:00:05.000000Z")
    assert (revived.activity, revived.termination_reason, revived.ended_at) == ("idle", None, None)
    killed = ActivityState(activity="exited", activity_at="2026-01-01T00:00:01.000000Z", termination_reason="killed")
    assert apply_event(killed, "PreToolUse", {}, "2026-01-01T00:00:09.000000Z") == killed


SEQUENCE = [
    ("SessionStart", {}), ("UserPromptSubmit", {}), ("PreToolUse", {}), ("PermissionRequest", {}),
    ("PostToolUse", {}), ("Notification", {"notification_type": "idle_prompt"}), ("Stop", {}),
]


@pytest.mark.parametrize("seed", range(20))
def test_shuffled_arrival_converges_to_the_same_state(seed: int) -> None:
    stamped = [(kind, payload, normalize_iso(f"2026-01-01T00:00:{i:02d}Z")) for i, (kind, payload) in enumerate(SEQUENCE)]
    in_order = ActivityState()
    for kind, payload, at in stamped:
        in_order = apply_event(in_order, kind, payload, at)
    shuffled = stamped[:]
    random.Random(seed).shuffle(shuffled)
    state = ActivityState()
    for kind, payload, at in shuffled:
        state = apply_event(state, kind, payload, at)
    assert state == in_order
    assert state.activity == "idle"
