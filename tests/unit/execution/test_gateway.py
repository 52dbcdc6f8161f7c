"""The gateway's submit never sends an order twice: after a timeout or a 5xx it looks the order
up before resending, a duplicate client order id counts as there, 429 waits for the venue's reset
and pauses every request, 403/422 are final, and giving up says the venue does not have it."""

from __future__ import annotations

import random
from decimal import Decimal

import prometheus_client as prom
import pytest

from components.core.config import SimulatedVenueConfig
from components.core.events import Order, OrderStatus, Side
from components.execution.gateway import Gateway, GatewayMetrics, SubmitFailed
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.base import (
    OrderRefused,
    OutcomeUnknown,
    RateLimited,
    Report,
    VenueUnavailable,
)
from components.execution.venues.simulated import SimulatedExchange
from tests.factories import quote


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Scripted(SimulatedExchange):
    """The simulated exchange, failing submits as scripted: an exception to raise before the
    venue acts, or `("after", exc)` to raise after it took the order."""

    def __init__(self, script: list[object]) -> None:
        super().__init__(SimulatedVenueConfig())
        self.script = script
        self.submits = 0
        self.lookups = 0
        self.on_quote(quote("99.98", "100.02"))

    async def submit(self, order: Order) -> Report:
        self.submits += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, tuple):
            await super().submit(order)
            raise step[1]
        if isinstance(step, Exception):
            raise step
        return await super().submit(order)

    async def get_order(self, client_order_id: str) -> Report | None:
        self.lookups += 1
        return await super().get_order(client_order_id)


def order() -> Order:
    return Order(
        client_order_id="c1",
        signal_id="s",
        symbol="AAPL",
        side=Side.BUY,
        quantity=Decimal(10),
        ts_event_ns=1,
        ts_origin_ns=1,
    )


def gateway(venue: Scripted, time: FakeTime, attempts: int = 5) -> Gateway:
    limiter = TokenBucket(6000, 100, clock=time.clock, sleep=time.sleep)
    backoff = Backoff(0.1, 1.0, attempts, random.Random(1))
    metrics = GatewayMetrics(prom.CollectorRegistry())
    return Gateway(venue, limiter, backoff, metrics, sleep=time.sleep, clock=time.clock)


async def test_submit_when_accepted_then_timed_out_then_found_not_resent() -> None:
    venue, time = Scripted([("after", OutcomeUnknown("no answer"))]), FakeTime()
    ack = await gateway(venue, time).submit(order())
    assert (venue.submits, venue.lookups) == (1, 1)
    assert ack.status is OrderStatus.FILLED  # what the venue has now
    assert len(venue.matching.orders) == 1


async def test_submit_when_5xx_before_acting_then_looked_up_and_sent_again_same_id() -> None:
    venue, time = Scripted([VenueUnavailable("HTTP 503")]), FakeTime()
    ack = await gateway(venue, time).submit(order())
    assert (venue.submits, venue.lookups) == (2, 1)
    assert ack.client_order_id == "c1" and list(venue.matching.orders) == ["c1"]


async def test_submit_when_sent_twice_anyway_then_duplicate_id_counts_as_there() -> None:
    venue, time = Scripted([]), FakeTime()
    await venue.submit(order())  # an earlier attempt the engine never heard back from
    ack = await gateway(venue, time).submit(order())
    assert ack.status is OrderStatus.FILLED and venue.lookups == 1
    assert len(venue.matching.orders) == 1


async def test_submit_when_429_then_waits_for_reset_and_pauses_the_limiter() -> None:
    venue, time = Scripted([RateLimited("HTTP 429", retry_after_s=7.0)]), FakeTime()
    gate = gateway(venue, time)
    await gate.submit(order())
    assert time.slept == [7.0] and venue.lookups == 0  # a 429 was not processed
    assert gate.metrics.retries.labels("rate_limited")._value.get() == 1


async def test_submit_when_refused_then_raised_at_once_without_retry() -> None:
    venue, time = Scripted([OrderRefused("HTTP 403: insufficient buying power")]), FakeTime()
    with pytest.raises(OrderRefused, match="insufficient buying power"):
        await gateway(venue, time).submit(order())
    assert venue.submits == 1 and time.slept == []


async def test_submit_when_every_attempt_fails_then_submit_failed_after_max_attempts() -> None:
    venue, time = Scripted([VenueUnavailable("HTTP 500")] * 10), FakeTime()
    with pytest.raises(SubmitFailed, match="gave up after 3 attempts: HTTP 500"):
        await gateway(venue, time, attempts=3).submit(order())
    assert (venue.submits, venue.lookups) == (3, 3)
    assert all(0 <= delay <= 0.1 * 2**n for n, delay in enumerate(time.slept))


def test_backoff_when_attempts_grow_then_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(0.1, 1.0, 10, random.Random(3))
    assert [backoff.ceiling(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    delays = [backoff.delay(5) for _ in range(200)]
    assert max(delays) <= 1.0 and min(delays) >= 0 and len(set(delays)) > 100
    assert backoff.delay(0, retry_after_s=12) == 12


async def test_request_when_lookups_time_out_then_retried_then_last_error_raised() -> None:
    venue, time = Scripted([]), FakeTime()
    gate = gateway(venue, time, attempts=3)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OutcomeUnknown("no answer")
        return "ok"

    assert await gate.request("asking", flaky) == "ok" and len(calls) == 3

    async def down() -> str:
        raise VenueUnavailable("HTTP 503")

    with pytest.raises(VenueUnavailable, match="HTTP 503"):
        await gate.request("asking", down)
    assert gate.metrics.retries.labels("timeout")._value.get() == 2
