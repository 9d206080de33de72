"""aod/faults.py, the AOD_FAULT_PAUSE test seam: read from the environment it is given (never at
import), unknown points refused, an armed point holds its task once."""

from __future__ import annotations

import asyncio

import pytest

from aod.faults import Faults


def test_the_points_come_from_the_environment_given() -> None:
    assert Faults.from_environ({"AOD_FAULT_PAUSE": " nudge-sent, delivery-sent ,"}).armed == {
        "nudge-sent", "delivery-sent"}
    assert Faults.from_environ({}).armed == frozenset()


def test_an_unknown_point_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"AOD_FAULT_PAUSE: unknown point\(s\) nudge-lost; known: "):
        Faults.from_environ({"AOD_FAULT_PAUSE": "nudge-sent,nudge-lost"})


async def test_an_armed_point_holds_its_task_the_first_time_only() -> None:
    faults = Faults(["nudge-typed"])
    await asyncio.wait_for(faults.pause("nudge-sent"), 1)  # not armed: passes at once
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(faults.pause("nudge-typed"), 0.05)
    await asyncio.wait_for(faults.pause("nudge-typed"), 1)  # reached once already
