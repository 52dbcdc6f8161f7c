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
    assert (first.ts_open_ns, first.ts_close_ns) == (JAN_2_NS, JAN_2_NS + DAY_NS - 1)
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


def _goog_csv() -> Path:
    """backtesting.py's bundled sample: a pandas export whose first, unnamed column holds dates."""
    import backtesting

    return Path(backtesting.__file__).parent / "test" / "GOOG.csv"


def test_load_when_pandas_export_with_unnamed_index_then_dates_from_first_column() -> None:
    bars = [bar for bar in data.load(_goog_csv()) if isinstance(bar, Bar)]
    assert len(bars) == 2148 and bars[0].symbol == "GOOG"
    first = bars[0]
    assert (first.open, first.close, first.volume) == (D("100"), D("100.34"), D("22351900"))
    assert first.ts_open_ns == 1_092_873_600 * 10**9  # 2004-08-19, the first row's date


@pytest.mark.parametrize("header", ["Date", "DATE", "date", "Datetime", "DateTime", "TIMESTAMP"])
def test_load_when_time_header_in_any_case_then_it_is_the_time_column(
    tmp_path: Path, header: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{header},Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,.5,1\n")
    assert [bar.ts_open_ns for bar in data.load(path)] == [JAN_2_NS, JAN_2_NS + DAY_NS]


def test_load_when_pandas_export_with_range_index_then_named_time_column_wins(
    tmp_path: Path,
) -> None:
    """`frame.to_csv()` of a frame without a date index writes 0, 1, 2 in an unnamed column."""
    path = tmp_path / "x.csv"
    path.write_text(",Datetime,Open,High,Low,Close\n0,2024-01-02 09:30:00,1,2,0.5,1.5\n")
    (bar,) = data.load(path, timeframe_s=60)
    assert isinstance(bar, Bar) and bar.ts_open_ns == JAN_2_NS + (9 * 3600 + 1800) * 10**9


def test_load_when_yahoo_csv_with_adj_close_then_close_as_traded(tmp_path: Path) -> None:
    """Yahoo's `Adj Close` is back-adjusted for later splits and dividends: the bar keeps the
    prices that traded, so fills and the high/low bounds agree."""
    path = tmp_path / "aapl.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700\n"
        "2024-01-03,184.22,185.88,183.43,184.25,183.55,58414500\n"
    )
    bars = [bar for bar in data.load(path) if isinstance(bar, Bar)]
    assert [(b.symbol, b.close) for b in bars] == [("AAPL", D("185.64")), ("AAPL", D("184.25"))]


def test_load_when_yfinance_csv_with_ticker_header_rows_then_bars_of_that_ticker(
    tmp_path: Path,
) -> None:
    """`yfinance.download(...).to_csv()` writes two more header rows: the tickers, then `Date`."""
    path = tmp_path / "download.csv"
    path.write_text(
        "Price,Adj Close,Close,High,Low,Open,Volume\n"
        "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT,MSFT\n"
        "Date,,,,,,\n"
        "2024-01-02,368.1,370.87,375.9,366.77,373.86,25258600\n"
        "2024-01-03,367.7,370.6,373.26,368.51,369.01,23083500\n"
    )
    bars = [bar for bar in data.load(path) if isinstance(bar, Bar)]
    assert [(b.symbol, b.open, b.ts_open_ns) for b in bars] == [
        ("MSFT", D("373.86"), JAN_2_NS),
        ("MSFT", D("369.01"), JAN_2_NS + DAY_NS),
    ]


def test_load_when_no_time_column_then_error_lists_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("when,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=re.escape("found: when, Open, High, Low, Close")):
        data.load(path)


def test_load_when_daily_bars_by_date_then_each_closes_on_its_own_session_date(
    tmp_path: Path,
) -> None:
    """A daily bar labelled 2013-03-01 (a Friday) closes that day, not on Saturday."""
    path = tmp_path / "x.csv"
    path.write_text("Date,Open,High,Low,Close\n2013-02-28,1,2,0.5,1.5\n2013-03-01,1,2,0.5,1\n")
    bars = [bar for bar in data.load(path) if isinstance(bar, Bar)]
    friday_ns = 1_362_096_000 * 10**9
    assert (bars[-1].ts_open_ns, bars[-1].ts_close_ns) == (friday_ns, friday_ns + DAY_NS - 1)
    assert bars[-1].timeframe == "86400s"
    assert bars[0].ts_close_ns < bars[-1].ts_open_ns  # the next session opens after it closed
