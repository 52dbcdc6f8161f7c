"""The `StrategyEngine` on the real broker proxies, with a fake risk manager: bars in, signals
out with the bar's trace id and send time, and each risk outcome counted (approved, rejected by
reason, timeout). A config error surfaces when the engine is built."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.errors import ConfigError
from components.core.events import CheckSignal, Payload, Quote, Side, Signal, SignalChecked
from components.runtime.bus import Bus, Publisher
from components.runtime.settings import BrokerEndpoints
from components.strategy.base import Intent
from components.strategy.service import StrategyEngine
from components.strategy.sma_cross import SmaCross
from tests.conftest import make_settings
from tests.factories import flat_bar, quote

RiskHandler = Callable[[wire.Envelope], Awaitable[Payload]]


def _engine(
    endpoints: BrokerEndpoints,
    tmp_path: Path,
    risk_timeout_ms: int,
    class_path: str = "components.strategy.sma_cross:SmaCross",
) -> StrategyEngine:
    spec = TradingSystemSpec.model_validate(
        {
            "symbols": ["AAPL", "WARM"],
            "strategy": {
                "class_path": class_path,
                "params": {"fast": 1, "slow": 2},
                "order_quantity": "7",
                "risk_timeout_ms": risk_timeout_ms,
            },
        }
    )
    return StrategyEngine(
        spec, make_settings("strategy", endpoints, tmp_path), prom.CollectorRegistry()
    )


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


class Harness:
    """The engine running, a test bus publishing bars and reading signals, a fake risk manager."""

    def __init__(self, engine: StrategyEngine, bus: Bus) -> None:
        self.engine = engine
        self.publisher: Publisher = bus.publisher()
        # A queue fed by a task: cancelling a wait on the subscriber itself would end it.
        self.signals: asyncio.Queue[wire.Envelope] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read(bus.subscriber([topics.SIGNALS])))
        self.requests: list[wire.Envelope] = []

    async def _read(self, subscriber: AsyncIterable[wire.Envelope]) -> None:
        async for envelope in subscriber:
            self.signals.put_nowait(envelope)

    def count(self, name: str, **labels: str) -> float:
        return self.engine.registry.get_sample_value(name, labels) or 0.0

    async def warm_up(self) -> None:
        """Alternate WARM bars (each a cross) until a WARM signal comes back: both PUB/SUB
        paths are then joined. Returns with no risk check pending."""
        closes = iter(["10", "11"] * 1000)
        async with asyncio.timeout(5):
            while True:
                self.publisher.publish(
                    topics.bar("1s", "WARM"), flat_bar(next(closes), "WARM"), ts_event_ns=1
                )
                try:
                    await asyncio.wait_for(self.signals.get(), 0.05)
                    break
                except TimeoutError:
                    continue
        await _until(lambda: not self.engine._checks)
        while True:  # drain the warm-up's other signals
            try:
                await asyncio.wait_for(self.signals.get(), 0.1)
            except TimeoutError:
                break


@contextlib.asynccontextmanager
async def _harness(
    endpoints: BrokerEndpoints,
    tmp_path: Path,
    risk: RiskHandler | None,
    risk_timeout_ms: int = 500,
    class_path: str = "components.strategy.sma_cross:SmaCross",
) -> AsyncIterator[Harness]:
    engine = _engine(endpoints, tmp_path, risk_timeout_ms, class_path)
    bus = Bus(endpoints, "test", prom.CollectorRegistry())
    harness = Harness(engine, bus)
    tasks = [asyncio.create_task(engine.run()), harness.reader]

    async def record(request: wire.Envelope) -> Payload:
        harness.requests.append(request)
        assert risk is not None
        return await risk(request)

    if risk is not None:
        tasks.append(asyncio.create_task(bus.responder().serve("risk.reply", record)))
    try:
        await harness.warm_up()
        harness.requests.clear()
        yield harness
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.close()
        engine._close_bus()
        bus.close()


async def _approve(request: wire.Envelope) -> SignalChecked:
    check = request.payload
    assert isinstance(check, CheckSignal)
    return SignalChecked(
        signal_id=check.signal.signal_id,
        approved=True,
        client_order_id=f"c-{check.signal.signal_id}",
    )


async def _reject(request: wire.Envelope) -> SignalChecked:
    check = request.payload
    assert isinstance(check, CheckSignal)
    return SignalChecked(
        signal_id=check.signal.signal_id,
        approved=False,
        reason="POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=120, limit=100",
    )


async def test_on_bar_when_cross_approved_then_signal_published_traced_and_counted(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    async with _harness(endpoints, tmp_path, _approve) as harness:
        approved_before = harness.count("strategy_risk_checks_total", outcome="approved")
        sent = [
            harness.publisher.publish(topics.bar("1s", "AAPL"), flat_bar(c, "AAPL"), ts_event_ns=1)
            for c in ("10", "11", "10")
        ]
        envelope = await asyncio.wait_for(harness.signals.get(), 5)
        await _until(
            lambda: (
                harness.count("strategy_risk_checks_total", outcome="approved")
                == approved_before + 1
            )
        )
    signal = envelope.payload
    assert isinstance(signal, Signal)
    assert (signal.symbol, signal.side, signal.quantity) == ("AAPL", Side.SELL, Decimal(7))
    assert (signal.strategy, signal.reason) == ("sma_cross", "sma 1/2 crossed down")
    assert signal.signal_id.startswith("strategy-")
    assert signal.ts_origin_ns == sent[2].ts_send_ns
    assert envelope.trace_id == sent[2].trace_id
    (request,) = harness.requests
    check = request.payload
    assert isinstance(check, CheckSignal)
    assert check.signal == signal
    assert request.trace_id == sent[2].trace_id
    assert time.time_ns() - 10**9 < check.deadline_ns <= time.time_ns() + 500_000_000
    assert harness.count("strategy_signals_total", symbol="AAPL", side="sell") == 1


async def test_check_when_risk_rejects_then_counted_by_reason_code(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    async with _harness(endpoints, tmp_path, _reject) as harness:
        before = harness.count("strategy_risk_checks_total", outcome="rejected")
        for close in ("10", "11", "10", "11"):
            harness.publisher.publish(
                topics.bar("1s", "AAPL"), flat_bar(close, "AAPL"), ts_event_ns=1
            )
        await _until(
            lambda: harness.count("strategy_risk_checks_total", outcome="rejected") == before + 2
        )
        assert (
            harness.count("strategy_risk_rejections_total", reason="POSITION_LIMIT_EXCEEDED")
            == before + 2
        )
        assert harness.count("strategy_risk_checks_total", outcome="approved") == 0
        assert [r.payload.signal.side for r in harness.requests] == [Side.SELL, Side.BUY]  # type: ignore[union-attr]


async def test_check_when_no_risk_manager_then_times_out_as_rejection(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    async with _harness(endpoints, tmp_path, risk=None, risk_timeout_ms=50) as harness:
        before = harness.count("strategy_risk_checks_total", outcome="timeout")
        for close in ("10", "11", "10"):
            harness.publisher.publish(
                topics.bar("1s", "AAPL"), flat_bar(close, "AAPL"), ts_event_ns=1
            )
        await _until(
            lambda: harness.count("strategy_risk_checks_total", outcome="timeout") == before + 1
        )
        assert harness.count("strategy_risk_checks_total", outcome="approved") == 0
        assert harness.engine.status()["last_signal"]["reason"] == "sma 1/2 crossed down"


def test_init_when_params_invalid_then_config_error(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    spec = TradingSystemSpec.model_validate(
        {"symbols": ["AAPL"], "strategy": {"params": {"fast": 4, "slow": 2}}}
    )
    with pytest.raises(ConfigError, match=r"strategy\.params\.slow: must be greater than fast"):
        StrategyEngine(
            spec, make_settings("strategy", endpoints, tmp_path), prom.CollectorRegistry()
        )


class QuotesAndTimer(SmaCross):
    """The SMA crossover on bars (for the harness's warm-up), plus: buys on a quote whose bid size
    is above 500, and sells TIMER on its first timer tick after `armed` is set."""

    timer_interval_s = 0.05
    armed = False

    def on_quote(self, quote: Quote) -> Intent | None:
        if quote.bid_size > 500:
            return Intent(quote.symbol, Side.BUY, "deep bid")
        return None

    def on_timer(self, ts_ns: int) -> Intent | None:
        if not QuotesAndTimer.armed:
            return None
        QuotesAndTimer.armed = False
        return Intent("TIMER", Side.SELL, f"timer at {ts_ns}")


async def test_run_when_strategy_handles_quotes_and_timer_then_their_intents_are_signals(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    path = f"{__name__}:QuotesAndTimer"
    async with _harness(endpoints, tmp_path, _approve, class_path=path) as harness:
        shallow = quote("99.98", "100.02", size=100)
        deep = quote("99.98", "100.02", size=900)
        harness.publisher.publish(topics.quote("AAPL"), shallow, ts_event_ns=1)
        sent = harness.publisher.publish(topics.quote("AAPL"), deep, ts_event_ns=1)
        envelope = await asyncio.wait_for(harness.signals.get(), 5)
        signal = envelope.payload
        assert isinstance(signal, Signal)
        assert (signal.symbol, signal.side, signal.reason) == ("AAPL", Side.BUY, "deep bid")
        assert signal.ts_origin_ns == sent.ts_send_ns and envelope.trace_id == sent.trace_id
        QuotesAndTimer.armed = True
        envelope = await asyncio.wait_for(harness.signals.get(), 5)
        signal = envelope.payload
        assert isinstance(signal, Signal)
        assert (signal.symbol, signal.side) == ("TIMER", Side.SELL)
        assert signal.reason.startswith("timer at ")
        await _until(lambda: len(harness.requests) == 2)
