"""The token bucket on a fake clock: a burst passes at once, then requests are spaced at the
rate; tokens refill with time up to the burst; concurrent callers queue; a 429 pause holds all."""

from __future__ import annotations

import pytest

from components.execution.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bucket(time: FakeTime, per_minute: float = 60, burst: int = 3) -> TokenBucket:
    return TokenBucket(per_minute, burst, clock=time.clock, sleep=time.sleep)


async def test_acquire_when_burst_used_then_each_next_waits_one_interval() -> None:
    time = FakeTime()
    limiter = bucket(time, per_minute=120, burst=3)  # 2 per second
    for _ in range(3):
        assert await limiter.acquire() == 0
    assert await limiter.acquire() == pytest.approx(0.5)
    assert await limiter.acquire() == pytest.approx(0.5)
    assert limiter.waits == 2 and limiter.waited_s == pytest.approx(1.0)


async def test_acquire_when_idle_then_refills_only_up_to_the_burst() -> None:
    time = FakeTime()
    limiter = bucket(time, per_minute=60, burst=2)
    await limiter.acquire()
    await limiter.acquire()
    time.now += 3600  # an hour idle: still only 2 tokens
    assert [await limiter.acquire() for _ in range(3)] == [0, 0, pytest.approx(1.0)]


async def test_rate_when_many_requests_then_never_more_than_burst_plus_rate_times_elapsed() -> None:
    time = FakeTime()
    limiter = bucket(time, per_minute=200, burst=10)
    start = time.now
    for _ in range(410):
        await limiter.acquire()
    # 10 at once, then 400 more at 200 a minute: two minutes.
    assert time.now - start == pytest.approx(120.0)


async def test_reserve_when_concurrent_callers_then_each_waits_its_own_turn() -> None:
    time = FakeTime()
    limiter = bucket(time, per_minute=60, burst=1)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == [0, pytest.approx(1), pytest.approx(2), pytest.approx(3)]


async def test_pause_until_when_venue_said_429_then_every_request_waits_for_the_reset() -> None:
    time = FakeTime()
    limiter = bucket(time, per_minute=6000, burst=100)
    limiter.pause_until(time.now + 7)
    assert [limiter.reserve(), limiter.reserve()] == [pytest.approx(7), pytest.approx(7)]
    time.now += 7
    assert await limiter.acquire() == 0


def test_init_when_rate_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="rate_per_minute must be > 0"):
        TokenBucket(0, 1)
