"""The `MarketData` component on the real broker proxies: it publishes quotes, trades and bars
on their topics, a bar closed by a trade carries that trade's trace id, and a replay that ends
leaves the component up, with its bad rows counted by reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.errors import ConfigError
from components.core.events import Bar, Quote, Trade
from components.marketdata import replay
from components.marketdata.service import MarketData
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings


@contextlib.asynccontextmanager
async def _running(component: MarketData) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(component.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await component.close()
        component._close_bus()


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def _marketdata(
    document: dict[str, object], endpoints: BrokerEndpoints, tmp_path: Path
) -> MarketData:
    spec = TradingSystemSpec.model_validate(document)
    settings = make_settings("marketdata", endpoints, tmp_path)
    return MarketData(spec, settings, prom.CollectorRegistry())


async def test_run_when_synthetic_then_publishes_quotes_trades_and_traced_bars(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    marketdata = _marketdata(
        {
            "symbols": ["AAPL", "MSFT"],
            "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 10}}},
        },
        endpoints,
        tmp_path,
    )
    bus = Bus(endpoints, "listener", prom.CollectorRegistry())
    trades: dict[str, wire.Envelope] = {}
    seen: dict[type, list[wire.Envelope]] = {Quote: [], Trade: [], Bar: []}
    try:
        messages = aiter(bus.subscriber([topics.MARKET_DATA]))
        async with _running(marketdata), asyncio.timeout(10):
            while len(seen[Bar]) < 2 or not any(b.trace_id in trades for b in seen[Bar]):
                envelope = await anext(messages)
                seen[type(envelope.payload)].append(envelope)
                if isinstance(envelope.payload, Trade):
                    trades[envelope.trace_id] = envelope
            status = marketdata.status()
    finally:
        bus.close()
    assert {e.topic for e in seen[Quote]} == {"md.quote.AAPL", "md.quote.MSFT"}
    assert {e.topic for e in seen[Trade]} == {"md.trade.AAPL", "md.trade.MSFT"}
    for envelope in seen[Bar]:
        bar = envelope.payload
        assert isinstance(bar, Bar)
        assert envelope.topic == f"md.bar.1s.{bar.symbol}"
        assert bar.ts_close_ns - bar.ts_open_ns == 1_000_000_000
        if envelope.trace_id in trades:  # closed by this trade: the first of the next bar
            closer = trades[envelope.trace_id].payload
            assert isinstance(closer, Trade)
            assert closer.symbol == bar.symbol and closer.ts_event_ns >= bar.ts_close_ns
    assert status["feed"] == {"kind": "synthetic", "state": "running"}
    assert set(status["last_prices"]["AAPL"]) == {"bid", "ask", "last"}


async def test_run_when_replay_ends_then_idles_finished_with_drops_counted(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "ticks.csv"
    path.write_text(
        "ts,symbol,kind,price,size,bid_price,bid_size,ask_price,ask_size\n"
        "1000000000,AAPL,trade,10.00,5,,,,\n"
        "1500000000,AAPL,quote,,,10.02,1,10.01,1\n"  # crossed
        "1600000000,AAPL,trade,NaN,5,,,,\n"
        "1700000000,TSLA,trade,200,1,,,,\n"  # not a symbol of the system
        "2100000000,AAPL,trade,10.10,5,,,,\n"
        "2200000000,AAPL,trade,10.20,10,,,,\n"
    )
    marketdata = _marketdata(
        {
            "symbols": ["AAPL"],
            "marketdata": {
                "feed": {"kind": "replay", "replay": {"path": str(path), "speed": 0}},
                "bar_intervals_s": [1, 5],
                "bars_dir": str(tmp_path / "bars"),
            },
            "strategy": {"bar_interval_s": 1},
        },
        endpoints,
        tmp_path,
    )
    registry = marketdata.registry
    async with _running(marketdata) as task:
        await _until(lambda: marketdata.feed_state == "finished")
        await asyncio.sleep(0.05)
        assert not task.done()  # idles instead of exiting
        status = marketdata.status()
        assert marketdata.readiness()["feed"] is True

    def published(kind: str) -> float | None:
        return registry.get_sample_value("marketdata_events_published_total", {"kind": kind})

    def dropped(reason: str) -> float | None:
        return registry.get_sample_value("marketdata_events_dropped_total", {"reason": reason})

    assert (published("trade"), published("quote")) == (3, 0)
    assert published("bar") == 3  # 1s: [1,2) and [2,3) flushed at the end; 5s: [0,5)
    assert (dropped("crossed_quote"), dropped("invalid_price"), dropped("unknown_symbol")) == (
        1,
        1,
        1,
    )
    assert dropped("time_backwards") == 0
    assert status["feed"] == {"kind": "replay", "state": "finished"}
    assert status["dropped"] == {"crossed_quote": 1, "invalid_price": 1, "unknown_symbol": 1}
    assert status["last_prices"] == {"AAPL": {"last": "10.20"}}
    assert "Feed finished after 6 events published; idling until stopped." in caplog.text
    archived = [
        (bar.timeframe, bar.ts_open_ns)
        for path in sorted((tmp_path / "bars").rglob("*.parquet"))
        for bar in replay.ReplayFeed(path).events()
    ]
    assert archived == [("1s", 1_000_000_000), ("1s", 2_000_000_000), ("5s", 0)]
    assert [b.ts_open_ns for b in marketdata.store.bars("AAPL", "1s")] == [10**9, 2 * 10**9]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read it: No such file or directory"),
        ("ts,symbol,kind\n", "header lacks column(s) price, size, bid_price"),
    ],
)
def test_init_when_replay_file_unusable_then_config_error_names_field(
    endpoints: BrokerEndpoints, tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "ticks.csv"
    if content is not None:
        path.write_text(content)
    document = {
        "symbols": ["AAPL"],
        "marketdata": {"feed": {"kind": "replay", "replay": {"path": str(path)}}},
    }
    with pytest.raises(ConfigError) as caught:
        _marketdata(document, endpoints, tmp_path)
    (line,) = caught.value.problems
    assert line.startswith(f"marketdata.feed.replay.path: {str(path)!r}: {problem}")


def test_on_event_when_book_events_then_applied_published_or_dropped(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    from decimal import Decimal

    from components.core.events import BookDelta, BookLevel, BookSnapshot, Side
    from tests.conftest import RecordingPublisher

    marketdata = _marketdata({"symbols": ["AAPL"]}, endpoints, tmp_path)
    publisher = RecordingPublisher()
    marketdata._publisher = publisher  # type: ignore[assignment]
    d = Decimal
    snapshot = BookSnapshot(
        symbol="AAPL",
        bids=[BookLevel(d("99.9"), d(1))],
        asks=[BookLevel(d("100.1"), d(2))],
        ts_event_ns=1,
    )
    crossing = BookDelta(symbol="AAPL", side=Side.BUY, price=d("100.2"), size=d(1), ts_event_ns=2)
    unknown = BookDelta(symbol="AAPL", side=Side.SELL, price=d("101"), size=d(0), ts_event_ns=3)
    update = BookDelta(symbol="AAPL", side=Side.BUY, price=d("100"), size=d(5), ts_event_ns=4)
    for event in (snapshot, crossing, unknown, update):
        marketdata.on_event(event)
    assert [(topic, payload) for topic, payload, _ in publisher.sent] == [
        ("md.book.AAPL", snapshot),
        ("md.book.AAPL", update),
    ]
    assert marketdata.status()["books"] == {
        "AAPL": {"bid": "5 @ 100", "ask": "2 @ 100.1", "imbalance": "0.5", "levels": 3}
    }
    dropped = marketdata.status()["dropped"]
    assert dropped == {"crossed_book": 1, "unknown_level": 1}


class _CapturingSocket:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes, copy: bool = True) -> None:
        self.frames.append(frame)


def test_replay_when_run_twice_then_same_events_and_sequence_numbers(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    """The same file gives the same envelopes: topics, per-topic sequence numbers, payloads."""
    from components.runtime.bus import Publisher

    sample = Path(__file__).parents[3] / "examples" / "data" / "sample_ticks.csv"
    document = {
        "symbols": ["AAPL", "MSFT", "SPY"],
        "marketdata": {
            "feed": {"kind": "replay", "replay": {"path": str(sample), "speed": 0}},
            "bar_intervals_s": [1, 5],
        },
        "strategy": {"bar_interval_s": 1},
    }
    runs: list[list[tuple[str, int, object]]] = []
    for _ in range(2):
        marketdata = _marketdata(document, endpoints, tmp_path)
        socket = _CapturingSocket()
        marketdata._publisher = Publisher(marketdata.bus, socket)  # type: ignore[arg-type]
        assert isinstance(marketdata.feed, replay.ReplayFeed)
        for event in marketdata.feed.events():
            marketdata.on_event(event)
        for builder in marketdata.builders:
            for bar in builder.close_all():
                marketdata._publish_bar(bar, trace_id=None)
        envelopes = [wire.decode(frame) for frame in socket.frames]
        runs.append([(e.topic, e.seq, e.payload) for e in envelopes])
        marketdata._close_bus()
    assert runs[0] == runs[1]
    assert len(runs[0]) > 300
    first_seq: dict[str, int] = {}
    for topic, seq, _ in runs[0]:
        assert seq == first_seq.get(topic, 0) + 1
        first_seq[topic] = seq


async def test_run_when_synthetic_book_then_books_published_and_never_refused(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    marketdata = _marketdata(
        {
            "symbols": ["AAPL", "MSFT"],
            "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 5, "book_levels": 3}}},
        },
        endpoints,
        tmp_path,
    )
    async with _running(marketdata):
        await _until(
            lambda: (marketdata.registry.get_sample_value(
                "marketdata_events_published_total", {"kind": "book"}) or 0) > 200
        )  # fmt: skip
        status = marketdata.status()
    assert {symbol: book["levels"] for symbol, book in status["books"].items()} == {
        "AAPL": 6,
        "MSFT": 6,
    }
    assert status["dropped"] == {}
