"""The token bucket on a fake clock: a burst passes at once, then requests are spaced at the
rate; tokens refill with time up to the burst; concurrent callers queue; a 429 pause holds all,
also those already queued, and after the reset they resume at the rate, never as a burst."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Coroutine
from typing import Any

import prometheus_client as prom
import pytest

from components.core.config import SimulatedVenueConfig
from components.execution.gateway import Gateway, GatewayMetrics
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.base import RateLimited
from components.execution.venues.simulated import SimulatedExchange


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class VirtualTime:
    """A clock for concurrent callers: `sleep` parks the caller until `run` moves time on to its
    deadline, so that every caller's release time can be read off exactly."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, *work: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run `work` concurrently to the end, moving time on whenever every caller sleeps."""
        tasks = [asyncio.ensure_future(w) for w in work]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every runnable caller reach its next sleep
                await asyncio.sleep(0)
            if self._timers:
                deadline, _, future = heapq.heappop(self._timers)
                self.now = max(self.now, deadline)
                if not future.done():
                    future.set_result(None)
        return [t.result() for t in tasks]


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


async def test_acquire_when_concurrent_callers_then_each_released_in_its_own_turn() -> None:
    time = VirtualTime()
    limiter = TokenBucket(60, 1, clock=time.clock, sleep=time.sleep)
    released: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        released.append(time.now)

    await time.run(*(request() for _ in range(4)))
    assert released == [100, 101, 102, 103]


async def test_pause_until_when_venue_said_429_then_every_request_waits_for_the_reset() -> None:
    time = VirtualTime()
    limiter = TokenBucket(6000, 100, clock=time.clock, sleep=time.sleep)
    limiter.pause_until(time.now + 7)
    waited = await time.run(limiter.acquire(), limiter.acquire())
    assert waited == [pytest.approx(7), pytest.approx(7.01)]  # then at the rate, not at once
    assert limiter.pauses == 1


def test_init_when_rate_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="rate_per_minute must be > 0"):
        TokenBucket(0, 1)


async def test_acquire_when_429_then_queued_requests_resume_at_the_rate_after_reset() -> None:
    time = VirtualTime()
    limiter = TokenBucket(600, 10, clock=time.clock, sleep=time.sleep)  # 10 a second
    released: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        released.append(time.now)

    await time.run(*(request() for _ in range(10)))  # the burst goes at once
    queued = [asyncio.ensure_future(request()) for _ in range(10)]
    await asyncio.sleep(0)
    limiter.pause_until(time.now + 2)  # one of the burst came back 429, retry in 2 s
    await time.run(*queued)
    assert released[:10] == [100.0] * 10
    # Nothing before the reset, then one at a time at the bucket's rate: never a burst.
    assert released[10:] == pytest.approx([102 + 0.1 * n for n in range(10)])


class WindowVenue:
    """A venue that takes `limit` requests per fixed window and answers 429 with the window's
    end (what Alpaca's `X-Ratelimit-Reset` says) to any request beyond it."""

    def __init__(self, time: VirtualTime, limit: int, window_s: float) -> None:
        self.time, self.limit, self.window_s = time, limit, window_s
        self.window_start = time.now
        self.count = 0
        self.accepted: list[float] = []
        self.refused: list[float] = []

    async def call(self) -> str:
        now = self.time.now
        if now >= self.window_start + self.window_s:
            self.window_start, self.count = now, 0
        self.count += 1
        if self.count > self.limit:
            self.refused.append(now)
            raise RateLimited("HTTP 429", retry_after_s=self.window_start + self.window_s - now)
        self.accepted.append(now)
        return "ok"


async def test_request_when_venue_window_spent_then_one_429_and_the_rest_paced() -> None:
    time = VirtualTime()
    limiter = TokenBucket(600, 10, clock=time.clock, sleep=time.sleep)
    gate = Gateway(
        SimulatedExchange(SimulatedVenueConfig()),
        limiter,
        Backoff(0.1, 1.0, 10, random.Random(1)),
        GatewayMetrics(prom.CollectorRegistry()),
        sleep=time.sleep,
        clock=time.clock,
    )
    venue = WindowVenue(time, limit=10, window_s=2.0)
    results = await time.run(*(gate.request("posting", venue.call) for _ in range(20)))
    assert results == ["ok"] * 20
    # The eleventh found the window spent; everything after waited for its reset.
    assert venue.refused == pytest.approx([100.1])
    after = venue.accepted[10:]
    assert min(after) >= 102.0
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(after))
