"""Background jobs: one loop for every part that runs by itself (reaper, poller, janitor, ...).

A part writes one pass, `async def step() -> float | None`, returning the seconds until it is
next due, or None to sleep until something calls `wake()`. The loop here owns the rest, so
every job sleeps, wakes, fails and stops the same way:

- a wake during a step is not lost: the step runs again right after it (the wake flag is
  cleared just before each step, so a step sees everything that happened before it began);
- a step that raises is logged, shown in `/v1/status` (state "backoff", its error, a restart
  count) and run again after a pause that doubles per failure in a row, capped: a job never
  dies of a bug, and a persistent failure does not spin or flood the log;
- wakes during that pause do not cut it short (a job woken by every commit would retry at the
  commit rate otherwise); the retry runs at its end whatever happened;
- `stop()` cancels the task and waits for it: the one way a job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal, Protocol, TypedDict

from aod.timefmt import iso_from_seconds

log = logging.getLogger("aod.jobs")

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0

State = Literal["new", "running", "waiting", "backoff", "stopped"]
Step = Callable[[], Awaitable[float | None]]


class Wait(Protocol):
    async def __call__(self, woken: asyncio.Event | None, timeout: float | None) -> None: ...


class JobStatus(TypedDict):
    state: State
    last_error: str | None
    restarts: int
    next_due: str | None


async def wait_or_wake(woken: asyncio.Event | None, timeout: float | None) -> None:
    """Until `woken` is set (when given) or `timeout` seconds passed (when given)."""
    if timeout is not None and timeout <= 0:
        await asyncio.sleep(0)  # a job due at once still lets the loop run others
        return
    if woken is None:
        assert timeout is not None
        await asyncio.sleep(timeout)
        return
    if woken.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await woken.wait()


def backoff(failures: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> float:
    """The pause after `failures` failed steps in a row (1, 2, 4, ... seconds, at most `cap`)."""
    return min(cap, first * 2.0 ** min(failures - 1, 32))


class Job:
    def __init__(self, name: str, step: Step, *, woken: asyncio.Event | None = None, first: float | None = 0.0,
                 wait: Wait = wait_or_wake, clock: Callable[[], float] = time.time) -> None:
        """`woken`: the part's own wake flag, when it sets it itself (a commit listener, a worker
        that finished); `first`: when the first step is due (None: at the first wake)."""
        self.name = name
        self._step = step
        self._first = first
        self._wait = wait
        self._clock = clock
        self._woken = woken if woken is not None else asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.state: State = "new"
        self.last_error: str | None = None
        self.restarts = 0  # failed steps the job went on after
        self.next_due: float | None = None  # clock() seconds; None while running or waiting for a wake only

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"job {self.name} already started")
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the step now (or right after the running one); on the event loop's thread."""
        self._woken.set()

    def wake_threadsafe(self) -> None:
        """`wake` from another thread (the writer's, a watcher's); a no-op before start."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._woken.set)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state, self.next_due = "stopped", None

    def status(self) -> JobStatus:
        due = None if self.next_due is None else iso_from_seconds(self.next_due)
        return {"state": self.state, "last_error": self.last_error, "restarts": self.restarts, "next_due": due}

    async def _run(self) -> None:
        failures = 0
        if self._first is None or self._first > 0:
            self._waiting(self._first)
            await self._wait(self._woken, self._first)
        while True:
            self.state, self.next_due = "running", None
            self._woken.clear()
            try:
                delay = await self._step()
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                    raise  # stop(): the one way a job ends
                # A CancelledError nobody asked for (a cancelled inner task awaited) is a failing step too.
                failures += 1
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                pause = backoff(failures)
                log.exception("job failed; running it again later",
                              extra={"job": self.name, "retry_in": pause, "failures_in_a_row": failures})
                self.state, self.next_due = "backoff", self._clock() + pause
                await self._wait(None, pause)
                continue
            failures = 0
            self._waiting(delay)
            await self._wait(self._woken, delay)

    def _waiting(self, delay: float | None) -> None:
        self.state = "waiting"
        self.next_due = None if delay is None else self._clock() + delay


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class Jobs:
    """The daemon's jobs by name: started and stopped together, reported together."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def __getitem__(self, name: str) -> Job:
        return self._jobs[name]

    def add(self, job: Job) -> Job:
        if job.name in self._jobs:
            raise ValueError(f"two jobs named {job.name}")
        self._jobs[job.name] = job
        return job

    def start(self) -> None:
        """Start every added job not started yet."""
        for job in self._jobs.values():
            if job.state == "new":
                job.start()

    async def stop(self) -> None:
        """Stop every job, the last started first."""
        for job in reversed(self._jobs.values()):
            await job.stop()

    @contextlib.asynccontextmanager
    async def running(self, *jobs: Job) -> AsyncIterator[None]:
        """Add and start `jobs`; stop them (last first) on the way out, however it is left."""
        started: list[Job] = []
        try:
            for job in jobs:
                self.add(job).start()
                started.append(job)
            yield
        finally:
            for job in reversed(started):
                await job.stop()

    def status(self) -> dict[str, JobStatus]:
        return {name: job.status() for name, job in self._jobs.items()}
