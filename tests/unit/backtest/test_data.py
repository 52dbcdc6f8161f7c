"""Loading a backtest's input: bars, quotes and trades from CSV and Parquet, exact prices, the
timeframe inferred, time order; and every kind of bad row refused with the file, row and value."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet
import pytest

from components.backtest import data
from components.core.errors import DataError
from components.core.events import Bar, Quote, Trade

D = Decimal
DAY_NS = 86_400 * 1_000_000_000
JAN_2_NS = 1_704_153_600 * 1_000_000_000  # 2024-01-02T00:00:00Z


def test_load_when_csv_daily_bars_then_exact_bars_with_day_timeframe(tmp_path: Path) -> None:
    path = tmp_path / "spy.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,100.10,101.00,99.90,100.70,1200\n"
        "2024-01-03,100.70,100.80,98.00,98.55,900\n"
        "2024-01-05,98.55,99.00,98.50,98.90,100\n"
    )
    bars = data.load(path)
    assert all(isinstance(bar, Bar) for bar in bars)
    first = bars[0]
    assert isinstance(first, Bar)
    assert (first.symbol, first.timeframe) == ("SPY", "86400s")
    assert (first.open, first.high, first.low, first.close) == (
        D("100.10"),
        D("101.00"),
        D("99.90"),
        D("100.70"),
    )
    assert (first.ts_open_ns, first.ts_close_ns) == (JAN_2_NS, JAN_2_NS + DAY_NS)
    assert [bar.ts_open_ns for bar in bars if isinstance(bar, Bar)][-1] == JAN_2_NS + 3 * DAY_NS


def test_load_when_parquet_two_symbols_then_interleaved_by_time(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    table = pa.table(
        {
            "timestamp": pa.array([0, 60, 0, 60], pa.timestamp("s", tz="UTC")),
            "symbol": ["AAA", "AAA", "BBB", "BBB"],
            "open": [1.1, 1.2, 2.0, 2.1],
            "high": [1.3, 1.3, 2.2, 2.2],
            "low": [1.0, 1.1, 1.9, 2.0],
            "close": [1.2, 1.25, 2.1, 2.05],
            "volume": [10, 20, 30, 40],
        }
    )
    pyarrow.parquet.write_table(table, path)
    bars = [bar for bar in data.load(path) if isinstance(bar, Bar)]
    assert [(b.symbol, b.ts_close_ns) for b in bars] == [
        ("AAA", 60 * 10**9),
        ("BBB", 60 * 10**9),
        ("AAA", 120 * 10**9),
        ("BBB", 120 * 10**9),
    ]
    assert bars[0].close == D("1.2") and bars[0].timeframe == "60s"  # the float's repr, exactly


def test_load_when_quotes_and_trades_then_those_events(tmp_path: Path) -> None:
    quotes = tmp_path / "q.csv"
    quotes.write_text(
        "ts_ns,symbol,bid_price,bid_size,ask_price,ask_size\n2,AAPL,99.98,100,100.02,200\n"
        "1,AAPL,99.97,100,100.01,200\n"
    )
    loaded = data.load(quotes)
    assert [type(e) for e in loaded] == [Quote, Quote]
    assert [e.ts_event_ns for e in loaded if isinstance(e, Quote)] == [1, 2]
    trades = tmp_path / "t.csv"
    trades.write_text("time,price,size\n2024-01-02T09:30:00Z,100.5,10\n")
    (trade,) = data.load(trades, symbol="MSFT")
    assert isinstance(trade, Trade)
    assert (trade.symbol, trade.price, trade.ts_event_ns) == (
        "MSFT",
        D("100.5"),
        JAN_2_NS + (9 * 3600 + 1800) * 10**9,
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,NaN\n", "row 2: close: not a finite number"),
        ("2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,-3\n", "row 2: close: price must be > 0"),
        ("2024-01-02,1,2,0.5,1.5\n2024-01-03,1,1.2,0.5,1.5\n", "row 2: high 1.2 and low 0.5"),
        ("2024-01-02,1,2,0.5,1.5\n2024-01-02,1,2,0.5,1.5\n", "row 2: X time does not increase"),
        ("2024-01-02,1,2,0.5,1.5\nyesterday,1,2,0.5,1.5\n", "row 2: time: not ISO 8601"),
    ],
)
def test_load_when_row_invalid_then_data_error_names_row(
    tmp_path: Path, rows: str, message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("date,open,high,low,close\n" + rows)
    with pytest.raises(DataError, match=message):
        data.load(path)


def test_load_when_columns_unknown_or_file_missing_then_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("date,foo\n2024-01-01,1\n")
    with pytest.raises(DataError, match="no bar columns"):
        data.load(path)
    with pytest.raises(DataError, match="cannot read"):
        data.load(tmp_path / "missing.csv")
    with pytest.raises(DataError, match=re.escape("unknown format '.txt'")):
        data.load(tmp_path / "x.txt")


def test_load_when_crossed_quote_then_data_error(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("ts_ns,bid_price,bid_size,ask_price,ask_size\n1,10.5,1,10.4,1\n")
    with pytest.raises(DataError, match=re.escape("row 1: crossed quote: bid 10.5 above ask 10.4")):
        data.load(path)


def test_load_when_parquet_written_by_marketdata_then_same_bars_back(tmp_path: Path) -> None:
    """The layout `tradingsystem data fetch` writes (exact text prices, a timeframe column) is
    what a backtest reads, even one bar per symbol."""
    from components.marketdata import parquet

    bar = Bar(
        symbol="SPY",
        timeframe="86400s",
        open=D("470.1"),
        high=D("472.55"),
        low=D("469.02"),
        close=D("471.3"),
        volume=D("81234567"),
        vwap=D("470.98"),
        trade_count=654321,
        ts_open_ns=JAN_2_NS,
        ts_close_ns=JAN_2_NS + DAY_NS,
    )
    path = tmp_path / "spy.parquet"
    parquet.write(path, parquet.bars_table([bar]))
    assert data.load(path) == [bar]


def test_load_when_timeframe_column_mixed_then_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "ts_ns,timeframe,open,high,low,close\n0,60s,1,1,1,1\n60000000000,300s,1,1,1,1\n"
    )
    with pytest.raises(DataError, match=r"bars of several timeframes \(300s, 60s\)"):
        data.load(path)


@pytest.mark.parametrize(
    ("name", "ticker"),
    [("spy_daily.csv", "SPYDAILY"), ("2024-q1.csv", "ASSET"), ("brk.b.csv", "BRK.B")],
)
def test_load_when_no_symbol_column_then_ticker_from_file_name(
    tmp_path: Path, name: str, ticker: str
) -> None:
    path = tmp_path / name
    path.write_text("ts_ns,price,size\n1,10,1\n")
    (trade,) = data.load(path)
    assert isinstance(trade, Trade) and trade.symbol == ticker
