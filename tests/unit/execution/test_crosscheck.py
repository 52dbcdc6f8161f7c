"""At start the execution engine's fills (its order log) are checked against the risk manager's
book: once every fill of ours is confirmed booked, a `risk.state` whose positions differ from
what our fills make means the risk manager knows fills this engine does not (or lost some): it
is named (log line, metric), once; the venue is then the judge (reconciliation)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.events import (
    BreakerState,
    FillBooked,
    Order,
    Position,
    RiskState,
    Side,
)
from components.execution.service import ExecutionEngine
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal


@pytest.fixture
async def engine(endpoints: BrokerEndpoints, tmp_path: Path) -> AsyncIterator[ExecutionEngine]:
    spec = TradingSystemSpec(symbols=["AAPL", "MSFT"])
    settings = make_settings("execution", endpoints, tmp_path)
    started = ExecutionEngine(spec, settings, prom.CollectorRegistry())
    started.restore()
    started._publisher = RecordingPublisher()  # type: ignore[assignment]
    started.venue.on_quote(quote("99.98", "100.02"))
    yield started
    await started.close()


async def fill_one(engine: ExecutionEngine) -> str:
    now = time.time_ns()
    order = Order(
        client_order_id="c1",
        signal_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=now,
        ts_origin_ns=now,
    )
    await engine.on_order(order, wire.Envelope(topics.APPROVED_ORDERS, "r", 1, 1, 1, "t", order))
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())
    [fill_id] = engine.orders.unconfirmed
    return fill_id


def risk_state(**held: str) -> RiskState:
    return RiskState(
        breaker=BreakerState.CLOSED,
        halted_reason="",
        cash=D(0),
        equity=D(0),
        realized_pnl=D(0),
        positions=[
            Position(symbol=s, quantity=D(q), avg_price=D(100), realized_pnl=D(0), ts_event_ns=1)
            for s, q in held.items()
        ],
        ts_event_ns=1,
    )


def mismatches(engine: ExecutionEngine, symbol: str) -> float | None:
    return engine.registry.get_sample_value(
        "execution_fill_crosscheck_mismatches_total", {"symbol": symbol}
    )


async def test_risk_state_when_risk_books_fills_we_do_not_know_then_named_once(
    engine: ExecutionEngine, caplog: pytest.LogCaptureFixture
) -> None:
    fill_id = await fill_one(engine)
    engine.on_risk_state(risk_state(AAPL="25"))  # ours not confirmed yet: no verdict
    assert engine.fill_crosscheck == "pending" and mismatches(engine, "AAPL") is None
    engine.on_fill_booked(FillBooked(fill_id=fill_id, client_order_id="c1", ts_event_ns=1))
    with caplog.at_level(logging.ERROR, logger="components.execution"):
        engine.on_risk_state(risk_state(AAPL="25", MSFT="0"))
        engine.on_risk_state(risk_state(AAPL="25"))  # checked once, at start
    assert mismatches(engine, "AAPL") == 1 and mismatches(engine, "MSFT") == 0
    assert engine.status()["fill_crosscheck"] == "disagreed"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "Fill cross-check: the risk manager holds AAPL 25, the fills in this engine's order log "
        "make 10; the venue decides (reconciliation applies what it holds)."
    ]


async def test_risk_state_when_books_agree_then_no_mismatch(engine: ExecutionEngine) -> None:
    fill_id = await fill_one(engine)
    engine.on_fill_booked(FillBooked(fill_id=fill_id, client_order_id="c1", ts_event_ns=1))
    engine.on_risk_state(risk_state(AAPL="10"))
    assert mismatches(engine, "AAPL") == 0
    assert engine.status()["fill_crosscheck"] == "agreed"
