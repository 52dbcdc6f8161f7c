"""TWAP and VWAP: quantities split exactly (whole shares stay whole), slices spaced over the
duration, VWAP along its curve; in the engine a parent is released at the risk manager and
worked as children each checked by it under a stable signal id, resumed after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import AlgoConfig, TradingSystemSpec
from components.core.events import (
    CheckSignal,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    SignalChecked,
    TimeInForce,
)
from components.execution import algos, orderlog
from components.execution.service import ExecutionEngine
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal


def test_split_when_whole_shares_then_whole_parts_adding_up_exactly() -> None:
    assert algos.split(D(1000), [1.0] * 3) == [D(334), D(333), D(333)]
    parts = algos.split(D(7), algos.u_curve(5))
    assert sum(parts) == D(7) and all(p == p.to_integral_value() for p in parts)
    assert sum(algos.split(D("10.5"), [1, 2, 3])) == D("10.5")


def test_u_curve_when_day_then_more_at_open_and_close_than_midday() -> None:
    curve = algos.u_curve(9)
    assert curve[0] == curve[-1] > curve[4]


def test_schedule_when_twap_then_equal_slices_spaced_over_the_duration() -> None:
    config = AlgoConfig(kind="twap", slices=4, duration_s=8)
    slices = algos.schedule(config, D(100), 1_000)
    assert [(s.index, s.due_ns, s.quantity) for s in slices] == [
        (0, 1_000, D(25)),
        (1, 1_000 + 2 * 10**9, D(25)),
        (2, 1_000 + 4 * 10**9, D(25)),
        (3, 1_000 + 6 * 10**9, D(25)),
    ]


def test_schedule_when_vwap_with_curve_then_parts_follow_it() -> None:
    config = AlgoConfig(kind="vwap", slices=3, duration_s=3, volume_curve=[1, 2, 1])
    assert [s.quantity for s in algos.schedule(config, D(100), 0)] == [D(25), D(50), D(25)]


def test_child_signal_when_parent_is_a_stop_then_children_keep_its_stop_and_time_in_force() -> None:
    parent = Order(
        client_order_id="p1",
        signal_id="s1",
        symbol="AAPL",
        side=Side.SELL,
        quantity=D(1000),
        ts_event_ns=1,
        ts_origin_ns=1,
        order_type=OrderType.STOP_LIMIT,
        limit_price=D("99.40"),
        stop_price=D("99.50"),
        time_in_force=TimeInForce.GTC,
    )
    child = algos.child_signal(parent, algos.Slice(2, 5, D(100)), "twap", 7)
    assert (child.order_type, child.limit_price, child.stop_price, child.time_in_force) == (
        OrderType.STOP_LIMIT,
        D("99.40"),
        D("99.50"),
        TimeInForce.GTC,
    )
    assert (child.quantity, child.signal_id) == (D(100), "algo:p1:2")


def test_config_when_curve_length_differs_from_slices_then_error() -> None:
    with pytest.raises(ValueError, match="volume_curve: has 2 values, slices is 3"):
        AlgoConfig(kind="vwap", slices=3, volume_curve=[1, 2])


SPEC = TradingSystemSpec.model_validate(
    {
        "symbols": ["AAPL"],
        "execution": {
            "algo": {"kind": "twap", "min_quantity": 100, "slices": 3, "duration_s": 0.03}
        },
    }
)


class Risk:
    """Answers child checks as the risk manager does: one client order id per signal id."""

    def __init__(self, reject: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.requests: list[CheckSignal] = []
        self.reject = reject
        self.approved: dict[str, Order] = {}

    async def __call__(self, request: CheckSignal) -> SignalChecked:
        self.requests.append(request)
        signal = request.signal
        index = int(signal.signal_id.rpartition(":")[2])
        if index in self.reject:
            return SignalChecked(signal_id=signal.signal_id, approved=False, reason="LIMIT: x")
        client_order_id = f"child-{signal.signal_id.rpartition(':')[2]}"
        self.approved[signal.signal_id] = Order(
            client_order_id=client_order_id,
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=signal.side,
            quantity=signal.quantity,
            ts_event_ns=time.time_ns(),
            ts_origin_ns=signal.ts_origin_ns,
        )
        return SignalChecked(
            signal_id=signal.signal_id, approved=True, client_order_id=client_order_id
        )


@pytest.fixture
async def engines(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> AsyncIterator[Callable[[Risk], ExecutionEngine]]:
    made: list[ExecutionEngine] = []

    def make(risk: Risk) -> ExecutionEngine:
        settings = make_settings("execution", endpoints, tmp_path)
        engine = ExecutionEngine(SPEC, settings, prom.CollectorRegistry())
        engine.restore()
        engine._publisher = RecordingPublisher()  # type: ignore[assignment]
        engine.venue.on_quote(quote("99.98", "100.02"))
        engine.check_signal = risk
        made.append(engine)
        return engine

    yield make
    for engine in made:
        for task in list(engine._tasks):
            task.cancel()
        await engine.close()


def parent(quantity: int = 300) -> Order:
    now = time.time_ns()
    return Order(
        client_order_id="big-1",
        signal_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        ts_event_ns=now,
        ts_origin_ns=now,
    )


async def deliver(engine: ExecutionEngine, order: Order) -> None:
    envelope = wire.Envelope(topics.APPROVED_ORDERS, "risk", 1, 1, 1, "t", order)
    await engine.on_order(order, envelope)
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())


async def until_sliced(engine: ExecutionEngine, parent_id: str = "big-1") -> None:
    async with asyncio.timeout(5):
        while not engine.orders.parents[parent_id].done:
            await asyncio.sleep(0.005)


async def test_parent_when_large_then_released_and_worked_as_checked_children(
    engines: Callable[[Risk], ExecutionEngine],
) -> None:
    risk = Risk(reject={1})
    engine = engines(risk)
    await deliver(engine, parent())
    updates = [p for _, p, _ in engine._publisher.sent if isinstance(p, OrderUpdate)]  # type: ignore[union-attr]
    assert [(u.status, u.reason) for u in updates] == [
        (OrderStatus.PENDING_NEW, ""),
        (OrderStatus.CANCELED, "SLICED: algo=twap, children=3"),
    ]
    await until_sliced(engine)
    signals = [r.signal for r in risk.requests]
    assert [s.signal_id for s in signals] == ["algo:big-1:0", "algo:big-1:1", "algo:big-1:2"]
    assert [s.quantity for s in signals] == [D(100)] * 3
    slices = engine.orders.parents["big-1"].slices
    assert slices[2].due_ns - slices[0].due_ns == 20_000_000  # 3 slices over 30 ms
    assert all(sig.ts_event_ns >= part.due_ns for sig, part in zip(signals, slices, strict=True))
    for child in risk.approved.values():  # what the risk manager publishes on risk.order
        await deliver(engine, child)
    assert {cid: s.status for cid, s in engine.orders.states.items() if cid != "big-1"} == {
        "child-0": OrderStatus.FILLED,
        "child-2": OrderStatus.FILLED,
    }
    sent = engine.orders.parents["big-1"].sent
    assert (sent[1].approved, sent[1].reason) == (False, "LIMIT: x")
    assert (
        engine.registry.get_sample_value(
            "execution_algo_slices_total", {"kind": "twap", "outcome": "approved"}
        )
        == 2
    )


async def test_parent_when_small_or_a_child_then_sent_as_it_is(
    engines: Callable[[Risk], ExecutionEngine],
) -> None:
    engine = engines(Risk())
    await deliver(engine, parent(quantity=99))
    assert engine.orders.states["big-1"].status is OrderStatus.FILLED and not engine.orders.parents


async def test_parent_when_restarted_midway_then_only_unsent_slices_are_sent(
    engines: Callable[[Risk], ExecutionEngine],
) -> None:
    class Stalls(Risk):
        """Answers the first child, then never answers again."""

        async def __call__(self, request: CheckSignal) -> SignalChecked:
            if self.requests:
                self.requests.append(request)
                await asyncio.Event().wait()
            return await super().__call__(request)

    risk = Stalls()
    engine = engines(risk)
    await deliver(engine, parent())
    async with asyncio.timeout(5):
        while len(risk.requests) < 2:
            await asyncio.sleep(0.001)
    for task in list(engine._tasks):  # killed while the second child is being checked
        task.cancel()
    assert engine._log is not None
    engine._log.close()
    engine._log = None

    again = Risk()
    restarted = engines(again)
    parent_state = restarted.orders.parents["big-1"]
    assert set(parent_state.sent) == {0}
    restarted._spawn(restarted._work_parent("big-1"))  # what run() does for unfinished parents
    await until_sliced(restarted)
    # The child in flight at the crash is asked again under the same signal id.
    assert [r.signal.signal_id for r in again.requests] == ["algo:big-1:1", "algo:big-1:2"]
    replay = orderlog.read(restarted.settings.data_dir / orderlog.ORDER_LOG_NAME)
    assert sum(isinstance(r, orderlog.SliceSent) for r in replay) == 3
