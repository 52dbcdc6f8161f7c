"""The risk manager and the execution engine together, on the real broker's sockets: signals are
approved or rejected by the limits, approved orders are filled at the simulated venue, the risk
manager's positions equal the fills published, a re-published order is not filled twice, a
restarted risk manager comes back with the same positions, an order that ended while the risk
manager was down has its exposure released once it is back, and a fill made while the risk
manager was down is booked exactly once after a restart of either side (re-sent until confirmed,
from the order log after execution's restart), after which the books cross-check as agreed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core import topics
from components.core.config import TradingSystemSpec
from components.core.events import (
    CheckSignal,
    Fill,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
    Signal,
    SignalChecked,
)
from components.execution.service import ExecutionEngine
from components.risk.service import RiskManager
from components.runtime.bus import Bus, Publisher, Requester
from components.runtime.component import Component
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

D = Decimal
QUOTES = {"AAPL": (D("99.99"), D("100.01")), "MSFT": (D("49.98"), D("50.02"))}
_signal_ids = itertools.count(1)


@pytest.fixture
def spec() -> TradingSystemSpec:
    """Small limits, so that a test reaches them in a few orders."""
    return TradingSystemSpec.model_validate(
        {"symbols": ["AAPL", "MSFT"], "risk": {"limits": {"max_position": 50}}}
    )


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


class Running:
    """Components running as tasks, and a test client on the bus that sees what they publish."""

    def __init__(self, spec: TradingSystemSpec, endpoints: BrokerEndpoints, tmp_path: Path) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.tmp_path = tmp_path
        self.tasks: dict[str, tuple[Component, asyncio.Task[None]]] = {}
        self.bus = Bus(endpoints, "test-client", prom.CollectorRegistry())
        self.publisher: Publisher = self.bus.publisher()
        self.requester: Requester = self.bus.requester()
        self.seen: list[Order | OrderUpdate | Fill] = []
        self.quotes_seen = 0
        subscriber = self.bus.subscriber(
            [topics.APPROVED_ORDERS, topics.ORDER_UPDATES, topics.FILLS, topics.QUOTES]
        )
        self._reader = asyncio.create_task(self._read(aiter(subscriber)))
        self._pump = asyncio.create_task(self._publish_market())

    async def _read(self, messages: AsyncIterator[object]) -> None:
        async for envelope in messages:
            payload = envelope.payload  # type: ignore[attr-defined]
            if isinstance(payload, Quote):
                self.quotes_seen += 1
            elif isinstance(payload, Order | OrderUpdate | Fill):
                self.seen.append(payload)

    async def _publish_market(self) -> None:
        """Quotes (steady prices) and the broker's heartbeat, which the fixture does not send."""
        while True:
            now = time.time_ns()
            for symbol, (bid, ask) in QUOTES.items():
                quote = Quote(
                    symbol=symbol,
                    bid_price=bid,
                    bid_size=D(100),
                    ask_price=ask,
                    ask_size=D(100),
                    ts_event_ns=now,
                )
                self.publisher.publish(topics.quote(symbol), quote, ts_event_ns=now)
            self.publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=now), ts_event_ns=now)
            await asyncio.sleep(0.02)

    def start(self, cls: type[Component]) -> Component:
        settings = make_settings(cls.name, self.endpoints, self.tmp_path)
        component = cls(self.spec, settings, prom.CollectorRegistry())
        task = asyncio.create_task(component.run(), name=cls.name)
        self.tasks[cls.name] = (component, task)
        return component

    async def stop(self, name: str) -> None:
        component, task = self.tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await component.close()
        component._close_bus()

    async def ready(self) -> None:
        """Every socket connected, heartbeats seen, and quotes through to everyone."""

        def all_ready() -> bool:
            components = [c for c, _ in self.tasks.values()]
            return self.quotes_seen > 0 and all(all(c.readiness().values()) for c in components)

        await wait_until(all_ready, "the components to be ready")
        for component, _ in self.tasks.values():
            if isinstance(component, RiskManager):
                await wait_until(lambda c=component: len(c.quotes) == 2, "quotes at risk")

    async def check(
        self, side: Side, quantity: int, symbol: str = "AAPL", limit_price: str | None = None
    ) -> SignalChecked:
        now = time.time_ns()
        signal = Signal(
            signal_id=f"sig-{next(_signal_ids)}",
            strategy="test",
            symbol=symbol,
            side=side,
            quantity=D(quantity),
            ts_event_ns=now,
            ts_origin_ns=now,
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            limit_price=None if limit_price is None else D(limit_price),
        )
        check = CheckSignal(signal=signal, deadline_ns=now + 2 * 10**9)
        reply = await self.requester.request(topics.RISK_CHECK, check, timeout_s=2)
        assert isinstance(reply.payload, SignalChecked)
        return reply.payload

    def fills(self) -> list[Fill]:
        return [m for m in self.seen if isinstance(m, Fill)]

    async def close(self) -> None:
        for name in list(self.tasks):
            await self.stop(name)
        self._pump.cancel()
        self._reader.cancel()
        self.requester.close()
        for task in (self._pump, self._reader):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.bus.close()


@pytest.fixture
async def running(
    broker: Broker, spec: TradingSystemSpec, endpoints: BrokerEndpoints, tmp_path: Path
) -> AsyncIterator[Running]:
    harness = Running(spec, endpoints, tmp_path)
    try:
        yield harness
    finally:
        await harness.close()


def positions_from(fills: list[Fill]) -> dict[str, Decimal]:
    held: dict[str, Decimal] = {}
    for fill in fills:
        held[fill.symbol] = held.get(fill.symbol, D(0)) + fill.side.sign * fill.quantity
    return held


async def test_signals_when_approved_then_filled_once_and_positions_follow_fills(
    running: Running,
) -> None:
    risk = running.start(RiskManager)
    execution = running.start(ExecutionEngine)
    assert isinstance(risk, RiskManager) and isinstance(execution, ExecutionEngine)
    await running.ready()

    replies = [
        await running.check(Side.BUY, 20),
        await running.check(Side.SELL, 5),
        await running.check(Side.BUY, 10, "MSFT"),
    ]
    assert all(r.approved for r in replies), [r.reason for r in replies]
    rejected = await running.check(Side.BUY, 40)
    assert not rejected.approved
    assert rejected.reason.startswith("POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=")
    assert "limit=50" in rejected.reason

    await wait_until(lambda: len(running.fills()) == 3, "three fills on the bus")
    await wait_until(lambda: risk.state.book.fill_count == 3, "three fills at risk")
    await wait_until(lambda: not risk.state.approvals, "no pending approvals")
    assert {f.client_order_id for f in running.fills()} == {r.client_order_id for r in replies}
    assert positions_from(running.fills()) == {"AAPL": D(15), "MSFT": D(10)}
    assert {p.symbol: p.quantity for p in risk.state.book.snapshot()} == {
        "AAPL": D(15),
        "MSFT": D(10),
    }
    spent = sum(f.side.sign * f.quantity * f.price + f.fee for f in running.fills())
    assert risk.state.book.cash == running.spec.risk.initial_cash - spent

    # An order re-published (a redelivery) is dropped by execution, not filled again.
    first_order = next(m for m in running.seen if isinstance(m, Order))
    running.publisher.publish(topics.APPROVED_ORDERS, first_order, ts_event_ns=time.time_ns())
    await wait_until(
        lambda: execution.registry.get_sample_value("execution_duplicate_orders_total") == 1,
        "the duplicate to be counted",
    )
    assert len(running.fills()) == 3
    assert risk.state.book.fill_count == 3


async def test_risk_manager_when_restarted_then_same_positions_and_keeps_approving(
    running: Running,
) -> None:
    risk = running.start(RiskManager)
    running.start(ExecutionEngine)
    await running.ready()
    assert (await running.check(Side.BUY, 30)).approved
    assert (await running.check(Side.SELL, 10, "MSFT")).approved
    await wait_until(lambda: risk.state.book.fill_count == 2, "two fills at risk")
    before = (risk.state.book.snapshot(0), risk.state.book.cash)
    await running.stop("risk")

    again = running.start(RiskManager)
    assert isinstance(again, RiskManager)
    await running.ready()
    assert (again.state.book.snapshot(0), again.state.book.cash) == before
    # The restored position counts against the limit: 30 held, 21 more would pass 50.
    refused = await running.check(Side.BUY, 21)
    assert refused.reason.startswith("POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=51")
    assert (await running.check(Side.BUY, 20)).approved
    await wait_until(lambda: again.state.book.quantity("AAPL") == D(50), "the new fill at risk")


async def test_order_when_it_ends_while_risk_is_down_then_released_after_risk_restarts(
    running: Running,
) -> None:
    risk = running.start(RiskManager)
    execution = running.start(ExecutionEngine)
    assert isinstance(risk, RiskManager) and isinstance(execution, ExecutionEngine)
    await running.ready()
    reply = await running.check(Side.BUY, 40, limit_price="97")  # rests: the ask is 100.01
    assert reply.approved, reply.reason
    cid = reply.client_order_id
    assert cid is not None
    await wait_until(
        lambda: cid in risk.state.approvals and risk.state.approvals[cid].acknowledged,
        "execution to acknowledge the order",
    )
    await running.stop("risk")

    # The venue cancels the order; its final update goes out while nobody at risk listens.
    await execution.venue.cancel(cid)
    await wait_until(lambda: execution.orders.states[cid].terminal, "the cancel at execution")
    assert execution.orders.states[cid].status is OrderStatus.CANCELED

    again = running.start(RiskManager)
    assert isinstance(again, RiskManager)
    again.restore()  # now, before its task runs (which then skips it): to see what it holds
    assert list(again.state.approvals) == [cid]  # still reserving the 40 AAPL
    await wait_until(lambda: cid not in again.state.approvals, "risk to release the order")
    resent = execution.registry.get_sample_value("execution_final_updates_resent_total")
    assert resent is not None and resent >= 1
    # Released by the re-sent update, not by expiry (an acknowledged approval never expires).
    assert not again.registry.get_sample_value("risk_approvals_expired_total")
    assert (await running.check(Side.BUY, 20)).approved


def crossing(symbol: str = "AAPL") -> Quote:
    """A quote through a resting buy at 97: it fills at its limit."""
    return Quote(
        symbol=symbol,
        bid_price=D("96.40"),
        bid_size=D(100),
        ask_price=D("96.50"),
        ask_size=D(100),
        ts_event_ns=time.time_ns(),
    )


async def rest_a_buy(running: Running, risk: RiskManager) -> str:
    reply = await running.check(Side.BUY, 10, limit_price="97")
    assert reply.approved and reply.client_order_id is not None, reply.reason
    cid = reply.client_order_id
    await wait_until(
        lambda: cid in risk.state.approvals and risk.state.approvals[cid].acknowledged,
        "execution to acknowledge the order",
    )
    return cid


async def test_fill_when_made_while_risk_is_down_then_booked_once_after_risk_restarts(
    running: Running,
) -> None:
    risk = running.start(RiskManager)
    execution = running.start(ExecutionEngine)
    assert isinstance(risk, RiskManager) and isinstance(execution, ExecutionEngine)
    await running.ready()
    cid = await rest_a_buy(running, risk)
    await running.stop("risk")

    execution.venue.on_quote(crossing())  # filled while nobody at risk listens
    await wait_until(lambda: execution.orders.states[cid].terminal, "the fill at execution")
    assert len(execution.orders.unconfirmed) == 1

    again = running.start(RiskManager)
    assert isinstance(again, RiskManager)
    await running.ready()
    await wait_until(lambda: not execution.orders.unconfirmed, "the fill confirmed")
    assert again.state.book.fill_count == 1 and again.state.book.quantity("AAPL") == D(10)
    assert (execution.registry.get_sample_value("execution_fills_resent_total") or 0) >= 1
    await wait_until(lambda: execution.fill_crosscheck == "agreed", "the fill cross-check")


async def test_fill_when_unconfirmed_and_execution_restarts_then_sent_from_its_log_once(
    running: Running,
) -> None:
    risk = running.start(RiskManager)
    execution = running.start(ExecutionEngine)
    assert isinstance(risk, RiskManager) and isinstance(execution, ExecutionEngine)
    await running.ready()
    cid = await rest_a_buy(running, risk)
    await running.stop("risk")
    execution.venue.on_quote(crossing())
    await wait_until(lambda: execution.orders.states[cid].terminal, "the fill at execution")
    await running.stop("execution")  # both down; the fill is only in execution's order log

    again = running.start(RiskManager)
    restarted = running.start(ExecutionEngine)
    assert isinstance(again, RiskManager) and isinstance(restarted, ExecutionEngine)
    await running.ready()
    await wait_until(lambda: again.state.book.fill_count == 1, "the fill booked at risk")
    await wait_until(lambda: not restarted.orders.unconfirmed, "the fill confirmed")
    await wait_until(lambda: restarted.fill_crosscheck == "agreed", "the fill cross-check")
    assert again.state.book.quantity("AAPL") == D(10)
    assert restarted.registry.get_sample_value(
        "execution_position_drifts_total", {"symbol": "AAPL"}
    ) in (None, 0)
