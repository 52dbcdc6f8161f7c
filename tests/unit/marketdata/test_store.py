"""The market-data store (last quote, bounded trade ring, bounded bars per symbol and timeframe)
and the bar archive: Parquet files that the replay and the backtest loader read back exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from components.backtest import data as backtest_data
from components.core.events import Bar, Quote, Trade
from components.marketdata import replay
from components.marketdata.store import BarArchive, MarketDataStore

S = 1_000_000_000


def _bar(index: int, symbol: str = "AAPL", timeframe: str = "60s") -> Bar:
    price = Decimal("100.01") + index
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        open=price,
        high=price + Decimal("0.5"),
        low=price - Decimal("0.25"),
        close=price + Decimal("0.125"),
        volume=Decimal(1000 + index),
        vwap=price + Decimal("0.0625"),
        trade_count=10 + index,
        ts_open_ns=index * 60 * S,
        ts_close_ns=(index + 1) * 60 * S,
    )


def test_store_when_fed_then_last_quote_and_bounded_history() -> None:
    store = MarketDataStore(trade_history=3, bar_history=2)
    quote = Quote(
        symbol="AAPL",
        bid_price=Decimal(1),
        bid_size=Decimal(1),
        ask_price=Decimal(2),
        ask_size=Decimal(1),
        ts_event_ns=1,
    )
    store.on_quote(quote)
    trades = [Trade(symbol="AAPL", price=Decimal(i), size=Decimal(1), ts_event_ns=i) for i in
              range(1, 6)]  # fmt: skip
    for trade in trades:
        store.on_trade(trade)
    for index in range(4):
        store.on_bar(_bar(index))
    store.on_bar(_bar(0, timeframe="1s"))
    assert store.last_quote("AAPL") == quote and store.last_quote("MSFT") is None
    assert store.trades("AAPL") == trades[-3:]
    assert store.trades("AAPL", 1) == [trades[-1]] and store.last_trade("AAPL") == trades[-1]
    assert store.bars("AAPL", "60s") == [_bar(2), _bar(3)]
    assert store.bars("AAPL", "60s", 5) == [_bar(2), _bar(3)]
    assert store.timeframes("AAPL") == ["1s", "60s"]
    assert store.trades("MSFT") == [] and store.bars("MSFT", "60s") == []


def test_archive_when_flushed_then_replay_and_backtest_read_bars_exactly(tmp_path: Path) -> None:
    archive = BarArchive(tmp_path, flush_every=3)
    bars = [_bar(index) for index in range(5)]
    for bar in bars:
        archive.add(bar)
    assert archive.files_written == 1  # the first three, at the threshold
    archive.flush()
    files = sorted((tmp_path / "60s").glob("*.parquet"))
    assert len(files) == 2 and not list(tmp_path.rglob(".*partial"))
    replayed = [e for path in files for e in replay.ReplayFeed(path, speed=0).events()]
    assert replayed == bars
    loaded = [e for path in files for e in backtest_data.load(path)]
    assert loaded == bars
