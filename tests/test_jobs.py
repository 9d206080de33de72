"""The Job loop (aod/jobs.py), driven without a clock: the test decides when each wait ends."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from aod.jobs import BACKOFF_CAP, Job, Jobs, backoff, wait_or_wake
from aod.timefmt import iso_from_seconds


class Waits:
    """Stands in for the job's sleep: each wait is queued for the test, which ends it with `tick`."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue[tuple[bool, float | None, asyncio.Future[None]]] = asyncio.Queue()

    async def __call__(self, woken: asyncio.Event | None, timeout: float | None) -> None:
        passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.seen.put((woken is not None, timeout, passed))
        waits: list[asyncio.Future[Any]] = [passed]
        if woken is not None:
            waits.append(asyncio.ensure_future(woken.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits[1:]:
                w.cancel()

    async def next(self) -> tuple[bool, float | None, asyncio.Future[None]]:
        return await asyncio.wait_for(self.seen.get(), 5)


class Steps:
    """A step whose results the test scripts: a number, None, or an exception to raise."""

    def __init__(self, *results: float | Exception | None) -> None:
        self.results = list(results)
        self.runs = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self) -> float | None:
        self.runs += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        result = self.results.pop(0) if self.results else None
        if isinstance(result, Exception):
            raise result
        return result


def clock() -> float:
    return 1_000.0


async def test_a_step_runs_again_when_its_delay_passes_and_status_says_when() -> None:
    waits, step = Waits(), Steps(30.0, None)
    job = Job("tick", step, wait=waits, clock=clock)
    job.start()
    wakeable, timeout, passed = await waits.next()
    assert (wakeable, timeout, step.runs) == (True, 30.0, 1)
    assert job.status() == {"state": "waiting", "last_error": None, "restarts": 0,
                            "next_due": iso_from_seconds(1_030.0)}
    passed.set_result(None)
    wakeable, timeout, _ = await waits.next()
    assert (wakeable, timeout, step.runs) == (True, None, 2)
    assert job.status()["next_due"] is None  # a wake only: nothing is due
    await job.stop()
    assert job.status()["state"] == "stopped"


async def test_a_wake_runs_the_step_and_one_during_a_step_is_not_lost() -> None:
    waits, step = Waits(), Steps(None, None, None)
    job = Job("woken", step, wait=waits, clock=clock)
    job.start()
    await waits.next()
    step.gate, step.entered = asyncio.Event(), asyncio.Event()
    job.wake()
    await asyncio.wait_for(step.entered.wait(), 5)
    assert step.runs == 2
    job.wake()  # while the second run is still in its step
    step.gate.set()
    await waits.next()  # the second run ends and waits, but the flag is already up
    await waits.next()
    assert step.runs == 3
    await job.stop()


async def test_a_failing_step_backs_off_doubling_then_recovers_and_shows_it() -> None:
    waits = Waits()
    step = Steps(RuntimeError("disk on fire"), ValueError("still"), 5.0, KeyError("again"), None)
    job = Job("flaky", step, wait=waits, clock=clock)
    job.start()
    pauses = []
    for _ in range(2):
        wakeable, timeout, passed = await waits.next()
        assert not wakeable  # a wake does not cut a pause short
        pauses.append(timeout)
        assert job.state == "backoff"
        job.wake()
        passed.set_result(None)
    assert pauses == [1.0, 2.0]
    _, timeout, passed = await waits.next()
    assert timeout == 5.0 and job.state == "waiting"
    assert job.status()["last_error"] == "ValueError: still"  # stays visible after recovery
    passed.set_result(None)
    wakeable, timeout, passed = await waits.next()
    assert (wakeable, timeout) == (False, 1.0)  # a success in between starts the doubling over
    assert job.status() == {"state": "backoff", "last_error": "KeyError: 'again'", "restarts": 3,
                            "next_due": iso_from_seconds(1_001.0)}
    passed.set_result(None)
    await waits.next()
    assert step.runs == 5
    await job.stop()


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(7) == BACKOFF_CAP
    assert backoff(10_000) == BACKOFF_CAP


async def test_stop_cancels_a_step_in_progress() -> None:
    step = Steps()
    step.gate = asyncio.Event()
    job = Job("slow", step, wait=Waits())
    job.start()
    await asyncio.wait_for(step.entered.wait(), 5)
    await job.stop()
    assert job.state == "stopped"
    assert job._task is None


async def test_wake_threadsafe_reaches_the_loop_from_another_thread() -> None:
    waits, step = Waits(), Steps(None, None)
    job = Job("threaded", step, wait=waits)
    job.wake_threadsafe()  # before start: nothing to wake, and no error
    job.start()
    await waits.next()
    thread = threading.Thread(target=job.wake_threadsafe)
    thread.start()
    thread.join()
    await waits.next()
    assert step.runs == 2
    await job.stop()


async def test_jobs_stop_last_started_first_even_when_the_body_fails() -> None:
    stopped: list[str] = []
    jobs = Jobs()

    class Recorded(Job):
        async def stop(self) -> None:
            stopped.append(self.name)
            await super().stop()

    a, b = Recorded("a", Steps(), wait=Waits()), Recorded("b", Steps(), wait=Waits())
    with pytest.raises(RuntimeError, match="start-up failed"):
        async with jobs.running(a, b):
            assert set(jobs.status()) == {"a", "b"}
            raise RuntimeError("start-up failed")
    assert stopped == ["b", "a"]
    assert jobs.status()["a"]["state"] == "stopped"


async def test_jobs_refuse_a_second_job_of_one_name_and_stop_what_started() -> None:
    jobs = Jobs()
    first = Job("same", Steps(), wait=Waits())
    with pytest.raises(ValueError, match="two jobs named same"):
        async with jobs.running(first, Job("same", Steps(), wait=Waits())):
            pass
    assert first.state == "stopped"


async def test_jobs_start_and_stop_all() -> None:
    jobs, waits = Jobs(), Waits()
    for name in ("x", "y"):
        jobs.add(Job(name, Steps(None), wait=waits))
    jobs.start()
    await waits.next()
    await waits.next()
    assert {s["state"] for s in jobs.status().values()} == {"waiting"}
    await jobs.stop()
    assert {s["state"] for s in jobs.status().values()} == {"stopped"}


async def test_the_real_wait_ends_on_a_wake_and_at_once_when_due_now() -> None:
    woken = asyncio.Event()
    waiting = asyncio.create_task(wait_or_wake(woken, None))
    await asyncio.sleep(0)
    assert not waiting.done()
    woken.set()
    await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(wait_or_wake(asyncio.Event(), 0), 5)
    await asyncio.wait_for(wait_or_wake(None, 0), 5)


async def test_a_parts_own_wake_flag_and_a_first_step_that_waits() -> None:
    waits, step, flag = Waits(), Steps(None), asyncio.Event()
    job = Job("own-flag", step, woken=flag, first=12.0, wait=waits, clock=clock)
    job.start()
    wakeable, timeout, _ = await waits.next()
    assert (wakeable, timeout, step.runs) == (True, 12.0, 0)  # nothing ran yet: it is due in 12 s
    assert job.status()["next_due"] == iso_from_seconds(1_012.0)
    flag.set()  # as the part's own wake() does
    await waits.next()
    assert step.runs == 1 and not flag.is_set()
    await job.stop()


async def test_a_cancelled_error_from_inside_a_step_is_a_failure_not_the_end() -> None:
    waits, runs = Waits(), []

    async def awaits_a_cancelled_task() -> float | None:
        runs.append(1)
        inner = asyncio.create_task(asyncio.sleep(3600))
        inner.cancel()
        await inner  # raises CancelledError into the step, though nobody stopped the job
        return None

    job = Job("inner-cancel", awaits_a_cancelled_task, wait=waits, clock=clock)
    job.start()
    wakeable, timeout, passed = await waits.next()
    assert (wakeable, timeout, job.state, job.restarts) == (False, 1.0, "backoff", 1)
    assert job.last_error is not None and job.last_error.startswith("CancelledError")
    passed.set_result(None)
    await waits.next()
    assert len(runs) == 2  # it went on
    await job.stop()
    assert job.state == "stopped"
