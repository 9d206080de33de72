"""The circuit breaker's rules, with the time passed in: no database, no clock."""

from __future__ import annotations

from aod.forward.breaker import Breaker


def _open(b: Breaker, at: float) -> None:
    for _ in range(b.threshold):
        assert b.allow(at)
        b.failed(at)


def test_closed_until_five_failures_in_a_row() -> None:
    b = Breaker(open_for=30)
    for i in range(4):
        assert b.allow(i) and b.state(i) == "closed"
        b.failed(i)
    assert b.state(4) == "closed" and b.allow(4)
    b.failed(4)
    assert b.state(4) == "open"
    assert not b.allow(5)
    assert b.retry_in(5) == 29


def test_a_success_resets_the_count() -> None:
    b = Breaker(open_for=30)
    for i in range(4):
        b.failed(i)
    b.succeeded()
    for i in range(4):
        b.failed(10 + i)
    assert b.state(14) == "closed"


def test_half_open_lets_exactly_one_probe_through() -> None:
    b = Breaker(open_for=30)
    _open(b, 100)
    assert not b.allow(129.9) and b.state(129.9) == "open"
    assert b.state(130) == "half_open" and b.retry_in(130) == 0
    assert b.allow(130)
    assert not b.allow(130.5), "a second attempt while the probe is out"
    assert b.state(131) == "half_open"


def test_a_successful_probe_closes() -> None:
    b = Breaker(open_for=30)
    _open(b, 0)
    assert b.allow(30)
    b.succeeded()
    assert b.state(30) == "closed" and b.failures == 0
    b.failed(31)
    assert b.state(31) == "closed", "one failure after closing does not re-open"


def test_a_failed_probe_reopens_for_another_timeout() -> None:
    b = Breaker(open_for=30)
    _open(b, 0)
    assert b.allow(40)
    b.failed(40)
    assert b.state(40) == "open"
    assert not b.allow(69) and b.retry_in(69) == 1
    assert b.allow(70)
