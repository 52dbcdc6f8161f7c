"""Hundreds of orders through the engine against venues that fail: injected 429 bursts, 5xx,
dropped connections, accept-then-timeout, duplicate and out-of-order reports, and engine
restarts (the venue survives). Afterwards: no order at the venue twice, every venue fill
published exactly once, the fills published add up to the venue's positions, and every order
the engine followed agrees with the venue."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom

from components.core import topics, wire
from components.core.config import SimulatedVenueConfig, TradingSystemSpec
from components.core.events import Fill, Order, OrderType, Side
from components.execution.service import ExecutionEngine
from components.execution.venues.base import Venue
from components.execution.venues.faults import Faults, FaultyVenue
from components.execution.venues.simulated import SimulatedExchange
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal
SPEC = TradingSystemSpec.model_validate(
    {
        "symbols": ["AAPL"],
        "execution": {
            "retry": {"initial_backoff_ms": 1, "max_backoff_ms": 4, "max_attempts": 12},
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 1000,
        },
    }
)


def order(n: int, rng: random.Random) -> Order:
    now = time.time_ns()
    limit = rng.random() < 0.3
    return Order(
        client_order_id=f"camp-{n}",
        signal_id=f"s{n}",
        symbol="AAPL",
        side=rng.choice([Side.BUY, Side.SELL]),
        quantity=D(rng.randint(1, 20)),
        ts_event_ns=now,
        ts_origin_ns=now,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=D(rng.choice(["99.90", "100.00", "100.10"])) if limit else None,
    )


class Campaign:
    def __init__(self, venue: Venue, endpoints: BrokerEndpoints, tmp_path: Path) -> None:
        self.venue = venue
        self.endpoints = endpoints
        self.tmp_path = tmp_path
        self.published: list[RecordingPublisher] = []
        self.engine: ExecutionEngine | None = None
        self.engines: list[ExecutionEngine] = []
        self._pump: asyncio.Task[None] | None = None

    async def start_engine(self) -> ExecutionEngine:
        settings = make_settings("execution", self.endpoints, self.tmp_path)
        engine = ExecutionEngine(SPEC, settings, prom.CollectorRegistry(), venue=self.venue)
        engine.restore()
        publisher = RecordingPublisher()
        engine._publisher = publisher  # type: ignore[assignment]
        self.published.append(publisher)
        await engine.reconcile()
        self._pump = asyncio.create_task(engine._forward_reports())
        self.engine = engine
        self.engines.append(engine)
        return engine

    def counted(self, metric: str) -> float:
        """`metric` summed over every label and every engine of the campaign."""
        return sum(
            sample.value
            for engine in self.engines
            for family in engine.registry.collect()
            if family.name == metric
            for sample in family.samples
            if sample.name == f"{metric}_total"
        )

    async def crash(self) -> None:
        """The engine dies at once: no cancels, no goodbye; the venue lives on."""
        assert self.engine is not None and self._pump is not None
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        assert self.engine._log is not None
        self.engine._log.close()

    def fills(self) -> list[Fill]:
        return [p for pub in self.published for t, p, _ in pub.sent if t == topics.FILLS]  # type: ignore[misc]


async def settle(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def test_campaign_when_venue_faults_and_engine_restarts_then_no_duplicates_no_lost_fills(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    exchange = SimulatedExchange(SimulatedVenueConfig())
    faults = Faults(
        rate_limit=0.04,
        retry_after_s=0.001,
        server_error=0.05,
        dropped=0.05,
        accept_then_timeout=0.08,
        duplicate_report=0.1,
        reorder_report=0.1,
    )
    venue = FaultyVenue(exchange, faults, random.Random(7))
    await venue.start()
    exchange.on_quote(quote("99.98", "100.02"))
    campaign = Campaign(venue, endpoints, tmp_path)
    engine = await campaign.start_engine()
    delivered = 0
    for n in range(400):
        if n and n % 60 == 0:
            await campaign.crash()
            engine = await campaign.start_engine()
        envelope = wire.Envelope(topics.APPROVED_ORDERS, "risk", 1, 1, 1, f"t{n}", order(n, rng))
        await engine.on_order(envelope.payload, envelope)  # type: ignore[arg-type]
        delivered += 1
        if n % 7 == 0:  # the market moves: resting limit orders fill
            mid = D("100.00") + D(rng.randint(-15, 15)) / 100
            exchange.on_quote(quote(str(mid - D("0.02")), str(mid + D("0.02"))))
        await asyncio.sleep(0)
    await settle(lambda: venue.reports.empty() and exchange.reports.empty())
    await asyncio.sleep(0.05)
    await campaign.crash()
    engine = await campaign.start_engine()  # a last restart reconciles what is left
    await settle(lambda: venue.reports.empty())
    await asyncio.sleep(0.05)

    assert sum(venue.injected.values()) >= 100, venue.injected
    venue_orders = exchange.matching.orders
    assert set(venue_orders) <= {f"camp-{n}" for n in range(delivered)}
    fills = campaign.fills()
    fill_ids = [f.fill_id for f in fills]
    assert len(fill_ids) == len(set(fill_ids)), "a fill was published twice"
    published = sum((f.side.sign * f.quantity for f in fills), D(0))
    assert published == exchange.matching.positions.get("AAPL", D(0))
    for client_order_id, sim in venue_orders.items():
        state = engine.orders.states[client_order_id]
        assert state.filled == sim.filled, client_order_id
        if sim.filled:
            assert state.notional == sim.notional, client_order_id
    assert campaign.counted("execution_invalid_transitions") == 0
    # Every restart's reconciliation found our fills and the venue's positions in agreement.
    assert campaign.counted("execution_position_drifts") == 0
    assert campaign.counted("execution_reconciliations") > 0
    assert campaign.counted("execution_stale_reports") > 0  # duplicates and reordering happened
    assert campaign.counted("execution_submits_found_at_venue") > 0  # timeouts after accept
    await campaign.crash()
    await venue.close()
