"""Shutdown that finishes: the working orders' cancels go out together (within the rate limit),
then each order's final state is fetched from the venue and the fills it shows are applied, so
an order the venue filled while its report was lost ends filled, not `pending_cancel`; an order
whose outcome cannot be learnt is named (log line, metric, status), and the last log line says
what the venue holds, for the closing check of `tradingsystem run`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import ExecutionConfig, SimulatedVenueConfig, TradingSystemSpec
from components.core.events import Fill, Order, OrderStatus, OrderType, Side
from components.execution.service import ExecutionEngine
from components.execution.venues.base import Report, VenueUnavailable
from components.execution.venues.simulated import SimulatedExchange
from components.runtime.jsonlog import JsonFormatter
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal
ORDERS = 8


class SlowVenue(SimulatedExchange):
    """The simulated exchange `delay_s` away per request, whose report stream can go silent
    (`muted`: reports are lost) and whose requests can all fail (`down`)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(SimulatedVenueConfig())
        self.delay_s = delay_s
        self.muted = False
        self.down = False
        self.in_flight = 0
        self.most_in_flight = 0

    async def _round_trip(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if self.down:
            raise VenueUnavailable("HTTP 503 (test)")

    def _publish(self, reports: list[Report]) -> None:
        if not self.muted:
            super()._publish(reports)

    async def cancel(self, client_order_id: str) -> None:
        await self._round_trip()
        await super().cancel(client_order_id)

    async def get_order(self, client_order_id: str) -> Report | None:
        await self._round_trip()
        return await super().get_order(client_order_id)

    async def positions(self) -> dict[str, Decimal]:
        await self._round_trip()
        return await super().positions()


Start = Callable[[TradingSystemSpec, SlowVenue], ExecutionEngine]


@pytest.fixture
async def start(endpoints: BrokerEndpoints, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[ExecutionEngine] = []

    def restored(spec: TradingSystemSpec, venue: SlowVenue) -> ExecutionEngine:
        settings = make_settings("execution", endpoints, tmp_path)
        engine = ExecutionEngine(spec, settings, prom.CollectorRegistry(), venue=venue)
        engine.restore()
        engine._publisher = RecordingPublisher()  # type: ignore[assignment]
        venue.on_quote(quote("99.98", "100.02"))
        started.append(engine)
        return engine

    yield restored
    for engine in started:
        await engine.close()


def spec(cancel_timeout_s: float) -> TradingSystemSpec:
    execution = ExecutionConfig(
        cancel_timeout_s=cancel_timeout_s, rate_limit_per_minute=6000, rate_limit_burst=20
    )
    return TradingSystemSpec(symbols=["AAPL"], execution=execution)


def resting(client_order_id: str) -> Order:
    now = time.time_ns()
    return Order(
        client_order_id=client_order_id,
        signal_id=f"s-{client_order_id}",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=now,
        ts_origin_ns=now,
        order_type=OrderType.LIMIT,
        limit_price=D(90),
    )


async def place(engine: ExecutionEngine, count: int) -> list[str]:
    ids = [f"c{n}" for n in range(count)]
    for client_order_id in ids:
        envelope = wire.Envelope(
            topics.APPROVED_ORDERS, "risk", 1, 1, 1, "t", resting(client_order_id)
        )
        await engine.on_order(envelope.payload, envelope)  # type: ignore[arg-type]
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())
    assert sorted(engine.orders.open) == ids
    return ids


def published(engine: ExecutionEngine) -> list[object]:
    return [p for _, p, _ in engine._publisher.sent]  # type: ignore[union-attr]


async def test_close_when_venue_filled_working_orders_unreported_then_fetched_and_applied(
    start: Start,
) -> None:
    venue = SlowVenue(delay_s=0.3)
    # One by one, 8 cancels and 8 lookups 0.3 s away take 4.8 s: beyond the 3 s bound.
    engine = start(spec(cancel_timeout_s=3), venue)
    ids = await place(engine, ORDERS)
    venue.muted = True  # the report stream is gone (a dropped WebSocket at shutdown)
    venue.on_quote(quote("89.00", "89.50"))  # the market comes through the limit: all fill
    await engine.close()
    assert {cid: engine.orders.states[cid].status for cid in ids} == dict.fromkeys(
        ids, OrderStatus.FILLED
    )
    fills = [p for p in published(engine) if isinstance(p, Fill)]
    assert sorted(f.client_order_id for f in fills) == ids
    assert all(f.quantity == D(10) and f.price == D(90) for f in fills)  # at its limit
    assert venue.most_in_flight > 1  # the cancels went out together
    assert engine.registry.get_sample_value("execution_orders_unknown_outcome") == 0


async def test_close_when_venue_cannot_answer_then_each_unknown_order_is_named(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    venue = SlowVenue(delay_s=0.01)
    engine = start(spec(cancel_timeout_s=1), venue)
    ids = await place(engine, 3)
    venue.down = True
    with caplog.at_level(logging.ERROR, logger="components.execution"):
        await engine.close()
    # Not silently pending cancel: named, counted and shown.
    assert engine.registry.get_sample_value("execution_orders_unknown_outcome") == 3
    assert engine.status()["unknown_outcome_orders"] == ids
    named = [r.getMessage() for r in caplog.records if "unknown outcome" in r.getMessage()]
    assert named == [
        "Shutdown left 3 order(s) of unknown outcome at simulated (pending cancel here; the "
        "next start looks them up): c0, c1, c2."
    ]


async def test_close_when_done_then_last_log_line_says_what_the_venue_holds(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    venue = SlowVenue(delay_s=0.01)
    engine = start(spec(cancel_timeout_s=2), venue)
    await place(engine, 2)
    venue.on_quote(quote("89.00", "89.50"))  # both fill (reported)
    with caplog.at_level(logging.INFO, logger="components.execution"):
        await engine.close()
    final = [r for r in caplog.records if hasattr(r, "venue_final")]
    assert len(final) == 1
    line = json.loads(JsonFormatter("execution").format(final[0]))
    assert line["venue_final"] == {
        "venue": "simulated",
        "positions": {"AAPL": "20"},
        "positions_known": True,
        "unknown_outcome_orders": [],
    }
