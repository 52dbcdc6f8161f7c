"""The `MarketData` component on an Alpaca feed (the local fake server) and the real broker
proxies: events validated and published, the connection's state in metrics and `/ready`, missing
keys refused as config, and failover to a synthetic backup and back with per-symbol order kept."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.errors import ConfigError
from components.core.events import Quote, Trade
from components.marketdata.service import MarketData
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings
from tests.fakes import alpaca_stream
from tests.fakes.alpaca_stream import KEY, SECRET, FakeAlpacaStream


def _rfc3339(ts_ns: int) -> str:
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns:09d}Z"


def _trade(symbol: str, price: float, ts_ns: int) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "i": 1, "x": "V", "p": price, "s": 10, "c": [],
            "t": _rfc3339(ts_ns), "z": "C"}  # fmt: skip


def _quote(symbol: str, bid: float, ask: float, ts_ns: int) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "bx": "V", "bp": bid, "bs": 1, "ax": "V", "ap": ask, "as": 1,
            "c": [], "t": _rfc3339(ts_ns), "z": "C"}  # fmt: skip


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def _marketdata(
    fake: FakeAlpacaStream, endpoints: BrokerEndpoints, tmp_path: Path, **feed: Any
) -> MarketData:
    alpaca = {
        "url": fake.url,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.1,
        **feed.pop("alpaca", {}),
    }
    spec = TradingSystemSpec.model_validate(
        {
            "symbols": ["AAPL", "MSFT"],
            "marketdata": {"feed": {"kind": "alpaca", "alpaca": alpaca, **feed}},
        }
    )
    settings = make_settings("marketdata", endpoints, tmp_path)
    return MarketData(spec, settings, prom.CollectorRegistry())


@contextlib.asynccontextmanager
async def _running(component: MarketData) -> AsyncIterator[None]:
    task = asyncio.create_task(component.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        component._close_bus()


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


def _sample(md: MarketData, name: str, **labels: str) -> float:
    return md.registry.get_sample_value(name, labels) or 0.0


async def test_run_when_alpaca_then_publishes_valid_events_and_reports_connection(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path, keys: None
) -> None:
    async with alpaca_stream.running() as fake:
        md = _marketdata(fake, endpoints, tmp_path)
        bus = Bus(endpoints, "listener", prom.CollectorRegistry())
        received: list[wire.Envelope] = []
        try:
            messages = aiter(bus.subscriber([topics.MARKET_DATA]))
            async with _running(md):
                await _until(lambda: bool(fake.subscribed))
                assert md.readiness()["feed.connection"] is True
                await asyncio.sleep(0.2)  # let the subscriber's connection settle
                now = time.time_ns()
                await fake.push(
                    [
                        _trade("AAPL", 189.5, now - 1_000_000),
                        _quote("MSFT", 410.2, 410.1, now),  # crossed: dropped
                        _quote("MSFT", 410.1, 410.2, now),
                        _trade("AAPL", 189.6, now + 3600 * 10**9),  # an hour ahead: dropped
                    ]
                )
                async with asyncio.timeout(5):
                    while len(received) < 2:
                        received.append(await anext(messages))
                state = _sample(
                    md,
                    "marketdata_feed_state",
                    feed="alpaca-iex",
                    marketdata_feed_state="subscribed",
                )
                await fake.drop_all()
                await _until(lambda: md.feed.connection.reconnects == 1)  # type: ignore[attr-defined]
                await _until(lambda: bool(fake.subscribed))
        finally:
            bus.close()
    assert [type(e.payload) for e in received] == [Trade, Quote]
    assert [e.topic for e in received] == ["md.trade.AAPL", "md.quote.MSFT"]
    assert state == 1
    assert _sample(md, "marketdata_events_dropped_total", reason="crossed_quote") == 1
    assert _sample(md, "marketdata_events_dropped_total", reason="future_timestamp") == 1
    assert _sample(md, "marketdata_events_received_total", type="trade", source="alpaca-iex") == 2
    assert _sample(md, "marketdata_feed_lag_seconds_count", source="alpaca-iex") == 2
    assert _sample(md, "marketdata_feed_reconnects_total", feed="alpaca-iex") == 1
    assert _sample(md, "marketdata_feed_gap_seconds_count", feed="alpaca-iex") == 1
    assert md.status()["feed"]["connection"]["state"] in ("subscribed", "disconnected")


def test_init_when_alpaca_without_keys_then_config_error_names_variables(
    endpoints: BrokerEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    fake = FakeAlpacaStream()
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID: not set"):
        _marketdata(fake, endpoints, tmp_path)


async def test_run_when_auth_fails_then_unready_with_reason(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong")
    async with alpaca_stream.running() as fake:
        md = _marketdata(fake, endpoints, tmp_path)
        async with _running(md):
            await _until(lambda: md.feed.connection.state.value == "failed")  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
            assert len(fake.connections) == 1  # no hammering
            assert md.readiness()["feed.connection"] is False
            assert "auth failed" in md.status()["feed"]["connection"]["failure"]
            assert "wrong" not in str(md.status())


async def test_run_when_primary_down_then_backup_publishes_and_hands_back_in_order(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path, keys: None
) -> None:
    async with alpaca_stream.running() as fake:
        md = _marketdata(
            fake,
            endpoints,
            tmp_path,
            backup={"kind": "synthetic", "takeover_after_s": 0.3,
                    "synthetic": {"tick_interval_ms": 20}},
        )  # fmt: skip
        bus = Bus(endpoints, "listener", prom.CollectorRegistry())
        trades: list[Trade] = []

        async def listen() -> None:
            async for envelope in bus.subscriber([topics.TRADES]):
                trades.append(envelope.payload)  # type: ignore[arg-type]

        listener = asyncio.create_task(listen())
        try:
            async with _running(md):
                await _until(lambda: bool(fake.subscribed))
                await asyncio.sleep(0.2)
                await fake.push([_trade("AAPL", 189.5, time.time_ns())])
                await _until(lambda: len(trades) == 1)
                fake.refuse_next(*[503] * 1000)
                await fake.drop_all()
                await _until(lambda: md.feed.on_backup, timeout_s=5)  # type: ignore[attr-defined]
                await _until(lambda: len(trades) > 10)
                assert md.readiness()["feed.connection"] is True  # the backup serves
                fake.refuse_next()
                fake._refuse_next.clear()
                await _until(lambda: not md.feed.on_backup, timeout_s=5)  # type: ignore[attr-defined]
                await fake.push([_trade("AAPL", 190.0, time.time_ns())])
                await _until(lambda: trades[-1].price == 190)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            bus.close()
    for symbol in ("AAPL", "MSFT"):
        stamps = [t.ts_event_ns for t in trades if t.symbol == symbol]
        assert stamps == sorted(stamps)
    assert len(set(trades)) == len(trades)
    assert _sample(md, "marketdata_failovers_total", to="synthetic") == 1
    assert _sample(md, "marketdata_failovers_total", to="alpaca-iex") == 1
    assert _sample(md, "marketdata_active_feed", feed="alpaca-iex") == 1


async def test_run_when_primary_muted_with_pongs_then_reconnects_fails_over_and_hands_back(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path, keys: None
) -> None:
    """The mute fault on the primary: open, pinging both ways, no data. Each reconnect subscribes
    again and stays mute, which must not count as up: the backup takes over, and the primary
    gets the stream back only once it delivers data again; nothing is published twice."""
    async with alpaca_stream.running(ping_interval_s=0.05) as fake:
        md = _marketdata(
            fake,
            endpoints,
            tmp_path,
            alpaca={"silence_timeout_s": 0.5, "heartbeat_s": 0.05},
            backup={"kind": "synthetic", "takeover_after_s": 0.3,
                    "synthetic": {"tick_interval_ms": 20}},
        )  # fmt: skip
        bus = Bus(endpoints, "listener", prom.CollectorRegistry())
        trades: list[Trade] = []

        async def listen() -> None:
            async for envelope in bus.subscriber([topics.TRADES]):
                trades.append(envelope.payload)  # type: ignore[arg-type]

        listener = asyncio.create_task(listen())
        feed: Any = md.feed
        try:
            async with _running(md):
                await _until(lambda: bool(fake.subscribed))
                await asyncio.sleep(0.2)
                await fake.push([_trade("AAPL", 189.5, time.time_ns())])
                await _until(lambda: len(trades) == 1)
                fake.mute()
                await _until(lambda: feed.on_backup, timeout_s=5)
                silenced = _sample(md, "marketdata_feed_disconnects_total",
                                   feed="alpaca-iex", reason="silence")  # fmt: skip
                assert silenced >= 1
                await _until(lambda: len(fake.connections) >= 2)  # reconnected, still mute
                await _until(lambda: bool(fake.subscribed))
                await asyncio.sleep(0.3)
                assert feed.on_backup  # a mute re-subscription is not "back"
                fake.mute(False)
                await fake.push([_trade("AAPL", 190.0, time.time_ns())])
                await _until(lambda: not feed.on_backup, timeout_s=5)
                await fake.push([_trade("AAPL", 190.5, time.time_ns())])
                await _until(lambda: trades[-1].price == Decimal("190.5"))
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            bus.close()
    for symbol in ("AAPL", "MSFT"):
        stamps = [t.ts_event_ns for t in trades if t.symbol == symbol]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)
    assert _sample(md, "marketdata_failovers_total", to="synthetic") == 1
    assert _sample(md, "marketdata_failovers_total", to="alpaca-iex") == 1
