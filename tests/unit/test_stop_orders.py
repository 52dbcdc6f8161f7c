"""Stop, stop-limit and IOC orders from a strategy's signal to the simulated venue, in process:
the risk engine approves them with their stop price and time in force, the execution engine sends
them so, the simulated exchange triggers the stop (or cancels an IOC's remainder), and what comes
back is booked by the risk engine."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from components.core.config import TradingSystemSpec
from components.core.events import (
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Signal,
    TimeInForce,
)
from components.execution.service import ExecutionEngine
from components.risk import lifecycle
from components.risk.engine import RiskEngine
from components.runtime.settings import BrokerEndpoints
from tests.factories import quote
from tests.unit.execution.test_execution_engine import deliver, make, sent

D = Decimal
S = 1_000_000_000
SPEC = TradingSystemSpec(symbols=["AAPL"])


def approved(risk: RiskEngine, **fields: object) -> lifecycle.Approved:
    now = time.time_ns()
    signal = Signal(
        signal_id=f"s{now}",
        strategy="test",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=now,
        ts_origin_ns=now,
        **fields,  # type: ignore[arg-type]
    )
    decision = risk.check(signal, now + S, now)
    assert isinstance(decision, lifecycle.Approved), decision
    return decision


def started_risk() -> RiskEngine:
    risk = RiskEngine(SPEC)
    now = time.time_ns()
    risk.start("test", now)
    risk.on_quote(quote("99.98", "100.02"), now)
    return risk


def drain(execution: ExecutionEngine) -> None:
    while not execution.venue.reports.empty():
        execution.on_report(execution.venue.reports.get_nowait())


def book(risk: RiskEngine, execution: ExecutionEngine) -> list[OrderStatus]:
    """Hand the risk engine what execution published, as the bus would; the statuses, in order."""
    statuses = []
    for _, payload, _ in sent(execution):
        now = time.time_ns()
        if isinstance(payload, Fill):
            risk.on_fill(payload, now)
        elif isinstance(payload, OrderUpdate):
            statuses.append(payload.status)
            risk.on_order_update(payload, now)
    return statuses


@pytest.mark.parametrize(
    "fields",
    [
        {"order_type": OrderType.STOP, "stop_price": D("100.50")},
        {
            "order_type": OrderType.STOP_LIMIT,
            "stop_price": D("100.50"),
            "limit_price": D("100.60"),
            "time_in_force": TimeInForce.GTC,
        },
    ],
)
async def test_stop_signal_when_price_reaches_its_stop_then_filled_and_booked(
    fields: dict[str, object], endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    risk = started_risk()
    order = approved(risk, **fields).order
    execution = make(SPEC, endpoints, tmp_path)  # the venue's ask: 100.02, below the stop
    try:
        await deliver(execution, order)
        sent_order = execution.orders.states[order.client_order_id].order
        assert (sent_order.order_type, sent_order.stop_price, sent_order.time_in_force) == (
            fields["order_type"],
            D("100.50"),
            fields.get("time_in_force", TimeInForce.DAY),
        )
        assert not any(isinstance(p, Fill) for _, p, _ in sent(execution))  # waits for its stop

        execution.venue.on_quote(quote("100.49", "100.51"))  # the ask reaches the stop
        drain(execution)
        [fill] = [p for _, p, _ in sent(execution) if isinstance(p, Fill)]
        assert (fill.quantity, fill.price) == (D(10), D("100.51"))
        statuses = book(risk, execution)
        assert statuses[-1] is OrderStatus.FILLED
        assert risk.state.book.quantity("AAPL") == D(10) and risk.state.approvals == {}
    finally:
        await execution.close()


async def test_ioc_signal_when_not_marketable_then_canceled_at_once_and_exposure_released(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    risk = started_risk()
    order = approved(
        risk, order_type=OrderType.LIMIT, limit_price=D("100.00"), time_in_force=TimeInForce.IOC
    ).order
    assert risk.exposures()["AAPL"].pending_buy == D(10)
    execution = make(SPEC, endpoints, tmp_path)  # ask 100.02: nothing trades at 100.00
    try:
        await deliver(execution, order)
        assert book(risk, execution) == [
            OrderStatus.PENDING_NEW,
            OrderStatus.NEW,
            OrderStatus.CANCELED,
        ]
        assert execution.orders.open == {}
        assert risk.state.approvals == {} and "AAPL" not in risk.exposures()  # nothing left
    finally:
        await execution.close()
