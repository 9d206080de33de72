"""Probe results -> facts, runtime handles, and --resume pairing predicates (pure, no database)."""

from __future__ import annotations

import pytest

from aod.lifecycle.liveness import Runtime, Verdict, judge, runtime_after_event
from aod.lifecycle.resume import is_fresh_start, is_resume_start
from aod.runtime.probe import Probe
from aod.runtime.probes import Pane, judge_pane
from aod.runtime.process import START_SLACK, ProcessStart, format_handle, judge_process, parse_handle

NOW, GRACE = 1_000.0, 60.0

# (id, probe, last sign of life, verdict)
JUDGE: list[tuple[str, Probe, float | None, Verdict]] = [
    ("alive", Probe.ALIVE, NOW - 3600, Verdict(True)),
    ("alive-no-event", Probe.ALIVE, None, Verdict(True)),
    ("dead-quiet", Probe.DEAD, NOW - 61, Verdict(False, terminate=True)),
    ("dead-never-heard-of", Probe.DEAD, None, Verdict(False, terminate=True)),
    ("dead-recent-event", Probe.DEAD, NOW - 5, Verdict(False)),
    ("dead-at-grace-boundary", Probe.DEAD, NOW - GRACE, Verdict(False)),
    ("dead-just-past-grace", Probe.DEAD, NOW - GRACE - 0.001, Verdict(False, terminate=True)),
    ("dead-event-in-future", Probe.DEAD, NOW + 30, Verdict(False)),
    ("failed-never-terminates", Probe.FAILED, NOW - 10_000, Verdict(None)),
    ("failed-no-event", Probe.FAILED, None, Verdict(None)),
    ("unknown-never-terminates", Probe.UNKNOWN, NOW - 10_000, Verdict(None)),
]


@pytest.mark.parametrize(("probe", "seen", "expected"), [c[1:] for c in JUDGE], ids=[c[0] for c in JUDGE])
def test_judge(probe: Probe, seen: float | None, expected: Verdict) -> None:
    assert judge(probe, last_sign_of_life=seen, now=NOW, grace=GRACE) == expected


def test_only_dead_ever_terminates() -> None:
    for probe in Probe:
        terminates = judge(probe, last_sign_of_life=None, now=NOW, grace=0).terminate
        assert terminates == (probe is Probe.DEAD)


NONE = Runtime()
PANE = Runtime("tmux", "%3", 100)
PROC = Runtime("process", "100@777", 100)

# (id, current, pane, pid, after)
RUNTIMES: list[tuple[str, Runtime, str | None, int | None, Runtime]] = [
    ("first-pane", NONE, "%3", 100, Runtime("tmux", "%3", 100)),
    ("first-pid", NONE, None, 100, Runtime("process", "100", 100)),
    ("nothing-reported", PANE, None, None, PANE),
    ("nothing-reported-process", PROC, None, None, PROC),
    ("same-pane-new-pid", PANE, "%3", 200, Runtime("tmux", "%3", 200)),
    ("same-pane-no-pid", PANE, "%3", None, PANE),
    ("moved-pane", PANE, "%7", 300, Runtime("tmux", "%7", 300)),
    ("left-tmux", PANE, None, 300, Runtime("process", "300", 300)),
    ("same-pid-keeps-start-time", PROC, None, 100, PROC),
    ("new-pid-drops-start-time", PROC, None, 101, Runtime("process", "101", 101)),
    ("process-into-tmux", PROC, "%1", 100, Runtime("tmux", "%1", 100)),
    ("spawned-pane-no-handle-yet", Runtime("tmux", None, None), "%4", 55, Runtime("tmux", "%4", 55)),
]


@pytest.mark.parametrize(("current", "pane", "pid", "after"), [c[1:] for c in RUNTIMES], ids=[c[0] for c in RUNTIMES])
def test_runtime_after_event(current: Runtime, pane: str | None, pid: int | None, after: Runtime) -> None:
    assert runtime_after_event(current, tmux_pane=pane, pid=pid) == after


def test_process_handles_round_trip() -> None:
    assert parse_handle(format_handle(42, "12345")) == (42, "12345")
    assert parse_handle(format_handle(42, None)) == (42, None)
    assert parse_handle("42") == (42, None)
    for bad in ("", "x", "-3", "0", "@5", "%3"):
        with pytest.raises(ValueError):
            parse_handle(bad)


OWNER_EVENT = 5_000.0
RUNNING = ProcessStart("777", OWNER_EVENT - 100)

# (id, observed, recorded token, probe)
PROCESS: list[tuple[str, ProcessStart | None, str | None, Probe]] = [
    ("gone", None, None, Probe.DEAD),
    ("gone-recorded", None, "777", Probe.DEAD),
    ("same-start", RUNNING, "777", Probe.ALIVE),
    ("pid-reused", ProcessStart("999", OWNER_EVENT - 100), "777", Probe.DEAD),
    ("unrecorded-started-before-event", RUNNING, None, Probe.ALIVE),
    ("unrecorded-started-within-slack", ProcessStart("1", OWNER_EVENT + START_SLACK - 0.5), None, Probe.ALIVE),
    ("unrecorded-started-after-event", ProcessStart("1", OWNER_EVENT + START_SLACK + 5), None, Probe.DEAD),
]


@pytest.mark.parametrize(("observed", "token", "expected"), [c[1:] for c in PROCESS], ids=[c[0] for c in PROCESS])
def test_judge_process(observed: ProcessStart | None, token: str | None, expected: Probe) -> None:
    assert judge_process(observed, token, owner_seen_at=OWNER_EVENT) == expected


def test_judge_process_without_an_event_trusts_the_pid() -> None:
    assert judge_process(ProcessStart("1", OWNER_EVENT * 2), None, owner_seen_at=None) is Probe.ALIVE


@pytest.mark.parametrize(
    ("panes", "pane", "expected"),
    [
        ({"%1": Pane(False, 10)}, "%1", Probe.ALIVE),
        ({"%1": Pane(True, 10)}, "%1", Probe.DEAD),
        ({"%1": Pane(False, 10)}, "%2", Probe.DEAD),
        ({}, "%1", Probe.DEAD),
        (None, "%1", Probe.DEAD),
    ],
    ids=["live", "pane-dead", "other-pane", "no-panes", "no-server"],
)
def test_judge_pane(panes: dict[str, Pane] | None, pane: str, expected: Probe) -> None:
    assert judge_pane(panes, pane) == expected


@pytest.mark.parametrize(
    ("kind", "payload", "fresh", "resume"),
    [
        ("SessionStart", {"source": "startup"}, True, False),
        ("SessionStart", {"source": "resume"}, False, True),
        ("SessionStart", {"source": "clear"}, False, False),
        ("SessionStart", {"source": "compact"}, False, False),
        ("SessionStart", {}, False, False),
        ("UserPromptSubmit", {"source": "startup"}, False, False),
    ],
)
def test_start_kinds(kind: str, payload: dict[str, str], fresh: bool, resume: bool) -> None:
    assert is_fresh_start(kind, payload) is fresh
    assert is_resume_start(kind, payload) is resume
