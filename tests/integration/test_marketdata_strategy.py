"""Market data to risk check through the real broker: a synthetic feed's bars reach the
strategy, its signals are published and checked by a (fake) risk manager, and the trace id of
each check is the one its signal carries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.events import CheckSignal, Signal, SignalChecked
from components.marketdata.service import MarketData
from components.runtime.bus import Bus
from components.runtime.component import Component
from components.runtime.settings import BrokerEndpoints
from components.strategy.service import StrategyEngine
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_signals_when_synthetic_bars_cross_then_checked_and_approved(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    spec = TradingSystemSpec.model_validate(
        {
            # Five symbols: with fast=1, slow=2 each turn of a symbol's closes is a cross, so
            # a signal is all but certain within the first few one-second bars.
            "symbols": ["AAPL", "MSFT", "SPY", "QQQ", "IWM"],
            "marketdata": {
                "feed": {"synthetic": {"tick_interval_ms": 5, "volatility_bps": 20}},
                "bar_intervals_s": [1],
            },
            "strategy": {"params": {"fast": 1, "slow": 2}, "risk_timeout_ms": 1000},
        }
    )
    components: list[Component] = [
        StrategyEngine(
            spec, make_settings("strategy", endpoints, tmp_path), prom.CollectorRegistry()
        ),
        MarketData(
            spec, make_settings("marketdata", endpoints, tmp_path), prom.CollectorRegistry()
        ),
    ]
    strategy = components[0]
    assert isinstance(strategy, StrategyEngine)
    risk_bus = Bus(endpoints, "risk", prom.CollectorRegistry())
    checks: list[wire.Envelope] = []
    signals: list[wire.Envelope] = []

    async def approve(request: wire.Envelope) -> SignalChecked:
        checks.append(request)
        assert isinstance(request.payload, CheckSignal)
        signal_id = request.payload.signal.signal_id
        return SignalChecked(signal_id=signal_id, approved=True, client_order_id=f"c-{signal_id}")

    async def collect(subscriber: AsyncIterable[wire.Envelope]) -> None:
        async for envelope in subscriber:
            signals.append(envelope)

    tasks = [
        asyncio.create_task(risk_bus.responder().serve("risk.reply", approve)),
        asyncio.create_task(collect(risk_bus.subscriber([topics.SIGNALS]))),
        *(asyncio.create_task(component.run()) for component in components),
    ]

    def approved() -> float:
        value = strategy.registry.get_sample_value(
            "strategy_risk_checks_total", {"outcome": "approved"}
        )
        return value or 0.0

    try:
        await _until(lambda: approved() >= 1 and len(signals) >= 1, timeout_s=20)
        assert not any(task.done() for task in tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for component in components:
            await component.close()
            component._close_bus()
        risk_bus.close()

    by_id = {e.payload.signal_id: e for e in signals if isinstance(e.payload, Signal)}
    assert {c.payload.signal.signal_id for c in checks} & set(by_id)  # type: ignore[union-attr]
    for check in checks:
        assert isinstance(check.payload, CheckSignal)
        signal = check.payload.signal
        assert signal.symbol in spec.symbols
        assert signal.ts_origin_ns <= signal.ts_event_ns
        if signal.signal_id in by_id:  # the check and the signal share the bar's trace
            assert by_id[signal.signal_id].trace_id == check.trace_id
    assert strategy.bars_seen >= 2
