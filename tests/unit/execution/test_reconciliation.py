"""Reconciliation with the venue while running, not only at start: every pass brings the orders
open here up to date (a fill or cancel whose report was lost is applied once, through the same
path as live reports), and compares positions; one that still differs is a drift (metric, log
line with both exact quantities, `PositionDrifted` for the risk manager). A pass that fails is
logged and counted, and the loop tries again; a submit still in flight is left alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import ExecutionConfig, SimulatedVenueConfig, TradingSystemSpec
from components.core.events import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionDrifted,
    Side,
)
from components.execution.service import ExecutionEngine
from components.execution.venues.base import Report
from components.execution.venues.simulated import SimulatedExchange
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal


class QuietVenue(SimulatedExchange):
    """The simulated exchange whose report stream can go silent (`muted`: reports are lost),
    whose answers can be broken (`broken`: raised by the next request), and whose submits can
    be held (`hold`)."""

    def __init__(self) -> None:
        super().__init__(SimulatedVenueConfig())
        self.muted = False
        self.broken: list[Exception] = []
        self.hold: asyncio.Event | None = None

    def _publish(self, reports: list[Report]) -> None:
        if not self.muted:
            super()._publish(reports)

    def _answer(self) -> None:
        if self.broken:
            raise self.broken.pop(0)

    async def submit(self, order: Order) -> Report:
        if self.hold is not None:
            await self.hold.wait()
        return await super().submit(order)

    async def get_order(self, client_order_id: str) -> Report | None:
        self._answer()
        return await super().get_order(client_order_id)

    async def positions(self) -> dict[str, Decimal]:
        self._answer()
        return await super().positions()


Start = Callable[..., tuple[ExecutionEngine, QuietVenue]]


@pytest.fixture
async def start(endpoints: BrokerEndpoints, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[ExecutionEngine] = []

    def restored(**execution: object) -> tuple[ExecutionEngine, QuietVenue]:
        spec = TradingSystemSpec(
            symbols=["AAPL"], execution=ExecutionConfig.model_validate(execution)
        )
        venue = QuietVenue()
        settings = make_settings("execution", endpoints, tmp_path)
        engine = ExecutionEngine(spec, settings, prom.CollectorRegistry(), venue=venue)
        engine.restore()
        engine._publisher = RecordingPublisher()  # type: ignore[assignment]
        venue.on_quote(quote("99.98", "100.02"))
        started.append(engine)
        return engine, venue

    yield restored
    for engine in started:
        await engine.close()


def order(client_order_id: str, limit_price: str | None = "90") -> Order:
    now = time.time_ns()
    return Order(
        client_order_id=client_order_id,
        signal_id=f"s-{client_order_id}",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=now,
        ts_origin_ns=now,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=None if limit_price is None else D(limit_price),
    )


async def deliver(engine: ExecutionEngine, placed: Order) -> None:
    envelope = wire.Envelope(topics.APPROVED_ORDERS, "risk", 1, 1, 1, "t", placed)
    await engine.on_order(placed, envelope)
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())


def published(engine: ExecutionEngine, kind: type) -> list:  # type: ignore[type-arg]
    return [p for _, p, _ in engine._publisher.sent if isinstance(p, kind)]  # type: ignore[union-attr]


def sample(engine: ExecutionEngine, name: str, **labels: str) -> float | None:
    return engine.registry.get_sample_value(name, labels)


async def test_reconcile_pass_when_fill_and_cancel_reports_lost_then_applied_once(
    start: Start,
) -> None:
    engine, venue = start()
    await deliver(engine, order("fills"))
    await deliver(engine, order("cancels", limit_price="80"))
    venue.muted = True  # the stream drops what follows
    venue.on_quote(quote("89.00", "89.50"))  # "fills" fills at its limit, 90
    await venue.cancel("cancels")  # canceled at the venue (by hand, or by its session end)

    await engine.reconcile_pass()
    assert engine.orders.states["fills"].status is OrderStatus.FILLED
    assert engine.orders.states["cancels"].status is OrderStatus.CANCELED
    [fill] = published(engine, Fill)
    assert (fill.fill_id, fill.quantity, fill.price) == ("fills:10", D(10), D(90))

    venue.muted = False
    venue.reports.put_nowait(await venue.get_order("fills"))  # the late report after all
    await engine.reconcile_pass()
    while not venue.reports.empty():
        engine.on_report(venue.reports.get_nowait())
    assert len(published(engine, Fill)) == 1  # one execution, one fill: by its identity
    assert published(engine, PositionDrifted) == []
    assert sample(engine, "execution_position_drift", symbol="AAPL") == 0


async def test_reconcile_pass_when_venue_holds_more_than_our_fills_then_drift_reported(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    engine, venue = start()
    await deliver(engine, order("ours", limit_price=None))  # 10 filled at 100.02
    venue.muted = True
    await venue.submit(order("by-hand", limit_price=None))  # the engine never hears of it
    with caplog.at_level(logging.ERROR, logger="components.execution"):
        await engine.reconcile_pass()
    [drift] = published(engine, PositionDrifted)
    assert (drift.symbol, drift.ours, drift.venue_position, drift.venue) == (
        "AAPL",
        D(10),
        D(20),
        "simulated",
    )
    assert sample(engine, "execution_position_drift", symbol="AAPL") == 10
    assert sample(engine, "execution_position_drifts_total", symbol="AAPL") == 1
    assert [r.getMessage() for r in caplog.records if "drift" in r.getMessage()] == [
        "Position drift in AAPL after reconciling with simulated: ours 10, simulated 20 "
        "(difference 10); drift policy halt."
    ]
    assert engine.status()["position_drift"] == {"AAPL": {"ours": "10", "simulated": "20"}}


async def test_reconcile_loop_when_a_pass_fails_then_logged_counted_and_tried_again(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    engine, venue = start(reconcile_interval_s=1)
    venue.broken = [KeyError("qty")]  # an answer the venue code could not read
    with caplog.at_level(logging.ERROR, logger="components.execution"):
        loop = asyncio.create_task(engine._reconcile_periodically())
        try:
            async with asyncio.timeout(30):
                while not sample(engine, "execution_reconcile_passes_total"):
                    await asyncio.sleep(0.05)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    assert sample(engine, "execution_reconcile_failures_total") == 1
    assert loop.cancelled()  # it ended because it was told to, not of the error
    assert any(
        r.getMessage().startswith("Reconciliation with simulated failed; trying again in 1 s")
        for r in caplog.records
    )


async def test_reconcile_pass_when_submit_in_flight_then_order_left_alone(start: Start) -> None:
    engine, venue = start()
    venue.hold = asyncio.Event()
    placed = order("in-flight", limit_price=None)
    sending = asyncio.create_task(deliver(engine, placed))
    async with asyncio.timeout(5):
        while "in-flight" not in engine.orders.states:
            await asyncio.sleep(0)
    await engine.reconcile_pass()  # the venue has not got it yet: not "absent"
    assert engine.orders.states["in-flight"].status is OrderStatus.PENDING_NEW
    venue.hold.set()
    await sending
    assert engine.orders.states["in-flight"].status is OrderStatus.FILLED
    updates = [u.status for u in published(engine, OrderUpdate)]
    assert OrderStatus.CANCELED not in updates


async def test_reconcile_when_lookup_answer_unreadable_at_start_then_engine_goes_on(
    start: Start,
) -> None:
    engine, venue = start()
    await deliver(engine, order("open"))
    engine._log.close()  # type: ignore[union-attr]  # killed: nothing canceled
    engine._log = None
    again, venue = start()
    venue.broken = [TypeError("'NoneType' object is not subscriptable")] * 20
    await again.reconcile()  # the order's lookup fails every time
    assert again.reconciled
    assert again._unresolved == {"open"}  # looked up again later
    assert sample(again, "execution_reconciliations_total", outcome="error") == 1
    venue.broken.clear()  # answers again for the shutdown
