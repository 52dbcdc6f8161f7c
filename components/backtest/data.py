"""A backtest's input: bars, quotes or trades from a CSV or Parquet file, as the same `Bar`, `Quote`
and `Trade` events a live run carries, in time order.

pyarrow reads both formats (and reads CSV faster than the csv module). Column names are matched
case-insensitively; which columns are present says what the file holds:

    bars    time, open, high, low, close [, volume, vwap, trade_count]
    quotes  time, bid_price, bid_size, ask_price, ask_size
    trades  time, price, size

plus an optional `symbol` column (else every row is `symbol`, by default the file's name in
capitals, without what a ticker cannot hold: `spy_daily.csv` is SPYDAILY). The time column is
`timestamp`, `time`, `datetime` or `date` (in any case), ISO 8601 text (a time without an offset
is UTC) or a Parquet timestamp, or `ts_ns`, integer nanoseconds since the epoch; failing those, the
first column when it has no name (`frame.to_csv()` of a frame indexed by time, as backtesting.py's
sample data). The formats people have load as they are:

    pandas export   ,Open,High,Low,Close,Volume        (unnamed index column of dates)
    Yahoo           Date,Open,High,Low,Close,Adj Close,Volume
    yfinance        Price,Close,...  /  Ticker,MSFT,...  /  Date,,,...   (three header rows; the
                    tickers row gives the symbol)

Yahoo's `Adj Close` is read by no one: it is back-adjusted for later splits and dividends, so it
matches neither the open, high and low of its row nor the prices that traded; a bar keeps `Close`.

A bar's time is its open; it closes one timeframe later: the one a `timeframe` column names
(`86400s`, as `tradingsystem data fetch` writes it, see `marketdata.parquet`), else the smallest gap
between two bars of a symbol, unless given. Daily bars stamped at midnight UTC (a date, as most
daily files are) and without a `timeframe` column are sessions named by that date: each closes
at the last nanosecond of its own date, so its equity point and the exits it triggers carry the
session's date, not the next day's (Friday's bar does not close on Saturday).

Prices stay exact: CSV text becomes `Decimal` as written, a Parquet float through its shortest
repr (`money.to_decimal`). A row with a price that is not a finite positive number, a negative
size, a high below the open, close or low (or a low above them), or a symbol's time that does not
increase, is refused with a `DataError` naming the file, the row and the value: a backtest on
silently repaired data would be a backtest of something else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from components.core import money
from components.core.errors import DataError, InvalidPriceError
from components.core.events import Bar, Quote, Trade

Event = Bar | Quote | Trade
TIME_COLUMNS = ("timestamp", "time", "datetime", "date")
BAR_COLUMNS = ("open", "high", "low", "close")
QUOTE_COLUMNS = ("bid_price", "bid_size", "ask_price", "ask_size")
TRADE_COLUMNS = ("price", "size")
NS = 1_000_000_000
DAY_NS = 86_400 * NS
UNNAMED = ("", "unnamed: 0")  # pandas' index column, as written and as read back and rewritten


def load(
    path: str | Path, symbol: str | None = None, timeframe_s: int | None = None
) -> list[Event]:
    """Every event in the file, sorted by time (a bar by its close), stably."""
    path = Path(path)
    table = _read(path)
    columns = {name.lower().strip(): name for name in table.column_names}
    rows = table.num_rows
    where = str(path)

    def column(name: str) -> list[Any]:
        return table.column(columns[name]).to_pylist()

    times = _times(table, columns, where)
    symbols = column("symbol") if "symbol" in columns else [symbol or _ticker(path)] * rows
    if all(name in columns for name in BAR_COLUMNS):
        events: list[Event] = _bars(column, columns, times, symbols, rows, where, timeframe_s)
        events.sort(key=_bar_close)
    elif all(name in columns for name in QUOTE_COLUMNS):
        events = _quotes(column, times, symbols, rows, where)
        events.sort(key=_event_time)
    elif all(name in columns for name in TRADE_COLUMNS):
        events = _trades(column, times, symbols, rows, where)
        events.sort(key=_event_time)
    else:
        raise DataError(
            f"{where}: no bar columns ({', '.join(BAR_COLUMNS)}), quote columns "
            f"({', '.join(QUOTE_COLUMNS)}) or trade columns ({', '.join(TRADE_COLUMNS)}); "
            f"found {', '.join(table.column_names)}"
        )
    return events


def load_all(
    paths: Sequence[str | Path], symbol: str | None = None, timeframe_s: int | None = None
) -> list[Event]:
    """The events of every file, merged in time order (stable: ties keep file order)."""
    events: list[Event] = []
    for path in paths:
        events.extend(load(path, symbol, timeframe_s))
    if len(paths) > 1:
        events.sort(key=_time)
    return events


def _time(event: Event) -> int:
    return event.ts_close_ns if isinstance(event, Bar) else event.ts_event_ns


def _ticker(path: Path) -> str:
    """A ticker from a file's name: `spy_daily.csv` is SPYDAILY; ASSET if none can be made."""
    letters = re.sub(r"[^A-Z0-9.]", "", path.stem.upper())[:10]
    return letters if letters[:1].isalpha() else "ASSET"


def _bar_close(bar: Bar) -> int:
    return bar.ts_close_ns


def _event_time(event: Quote | Trade) -> int:
    return event.ts_event_ns


def _read(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pyarrow.parquet.read_table(path)
        if path.suffix.lower() == ".csv":
            return _read_csv(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    raise DataError(f"{path}: unknown format {path.suffix!r} (expected .csv or .parquet)")


def _read_csv(path: Path) -> pa.Table:
    """A CSV file with every column as text, so that prices become `Decimal` as written."""
    with path.open("rb") as source:
        lines = [source.readline().decode("utf-8-sig").strip() for _ in range(3)]
    header = [name.strip().strip('"') for name in lines[0].split(",")]
    tickers = lines[1].split(",")
    read = pyarrow.csv.ReadOptions()
    symbols: list[str] = []
    if header[:1] == ["Price"] and tickers[:1] == ["Ticker"] and lines[2].startswith("Date,"):
        # yfinance: `Price,<field>...`, `Ticker,<ticker>...`, `Date,,...`, then the rows.
        header[0] = "Date"
        symbols = sorted({ticker.strip() for ticker in tickers[1:] if ticker.strip()})
        if len(symbols) > 1:
            raise DataError(
                f"{path}: a yfinance download of several tickers ({', '.join(symbols)}); "
                "save one ticker per file"
            )
        read = pyarrow.csv.ReadOptions(skip_rows=3, column_names=header)
    options = pyarrow.csv.ConvertOptions(column_types={name: pa.string() for name in header})
    table = pyarrow.csv.read_csv(path, read_options=read, convert_options=options)
    if symbols and "symbol" not in {name.lower() for name in header}:
        table = table.append_column("symbol", pa.array(symbols * table.num_rows, pa.string()))
    return table


def _times(table: pa.Table, columns: dict[str, str], where: str) -> list[int]:
    if "ts_ns" in columns:
        values = table.column(columns["ts_ns"]).to_pylist()
        try:
            return [int(value) for value in values]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: ts_ns: not an integer of nanoseconds: {exc}") from exc
    name = next((columns[n] for n in TIME_COLUMNS if n in columns), None)
    if name is None and table.column_names and table.column_names[0].strip().lower() in UNNAMED:
        name = table.column_names[0]
    if name is None:
        raise DataError(
            f"{where}: no time column (one of ts_ns, {', '.join(TIME_COLUMNS)}, or an unnamed "
            f"first column); found: {', '.join(table.column_names)}"
        )
    data = table.column(name)
    if pa.types.is_timestamp(data.type) or pa.types.is_date(data.type):
        unit = data.type.unit if pa.types.is_timestamp(data.type) else None
        if unit is not None:
            scale = {"s": NS, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
            return [value * scale for value in data.cast(pa.int64()).to_pylist()]
        return [_parse_time(str(value), where, row) for row, value in enumerate(data.to_pylist())]
    return [_parse_time(value, where, row) for row, value in enumerate(data.to_pylist())]


def _parse_time(text: Any, where: str, row: int) -> int:
    try:
        moment = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DataError(f"{where}: row {row + 1}: time: not ISO 8601: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def _number(
    convert: Callable[[Any], Decimal], value: Any, what: str, where: str, row: int
) -> Decimal:
    try:
        if isinstance(value, str):
            value = value.strip()
        return convert(value)
    except InvalidPriceError as exc:
        raise DataError(f"{where}: row {row + 1}: {what}: {exc}") from exc


def _bars(
    column: Callable[[str], list[Any]],
    columns: dict[str, str],
    times: list[int],
    symbols: list[Any],
    rows: int,
    where: str,
    timeframe_s: int | None,
) -> list[Event]:
    opens, highs, lows, closes = (column(name) for name in BAR_COLUMNS)
    volumes = column("volume") if "volume" in columns else [0] * rows
    vwaps = column("vwap") if "vwap" in columns else [None] * rows
    counts = column("trade_count") if "trade_count" in columns else [0] * rows
    _check_increasing(times, symbols, where)
    named = timeframe_s is None and "timeframe" in columns
    if named:
        timeframe_s = _named_timeframe_s(column("timeframe"), where)
    step_ns = _timeframe_ns(times, symbols, where) if timeframe_s is None else timeframe_s * NS
    timeframe = f"{step_ns // NS}s"
    # Sessions named by their date close within it (see the module's docstring); bars that name
    # their timeframe were aggregated here, and close one timeframe after their open.
    sessions = not named and step_ns == DAY_NS and all(ts % DAY_NS == 0 for ts in times)
    length_ns = step_ns - 1 if sessions else step_ns
    price, size = money.to_price, money.to_size
    bars: list[Event] = []
    for row in range(rows):
        o = _number(price, opens[row], "open", where, row)
        h = _number(price, highs[row], "high", where, row)
        low = _number(price, lows[row], "low", where, row)
        c = _number(price, closes[row], "close", where, row)
        if h < max(o, c, low) or low > min(o, c):
            raise DataError(
                f"{where}: row {row + 1}: high {h} and low {low} do not bound open {o} and "
                f"close {c}"
            )
        vwap = vwaps[row]
        bars.append(
            Bar(
                symbol=str(symbols[row]),
                timeframe=timeframe,
                open=o,
                high=h,
                low=low,
                close=c,
                volume=_number(size, volumes[row], "volume", where, row),
                vwap=c if vwap in (None, "") else _number(price, vwap, "vwap", where, row),
                trade_count=int(counts[row] or 0),
                ts_open_ns=times[row],
                ts_close_ns=times[row] + length_ns,
            )
        )
    return bars


def _named_timeframe_s(names: Sequence[Any], where: str) -> int | None:
    """The one timeframe a `timeframe` column names (`86400s`, as bars are named), or None."""
    distinct = {str(name).strip() for name in names}
    if len(distinct) != 1:
        if len(distinct) > 1:
            raise DataError(f"{where}: bars of several timeframes ({', '.join(sorted(distinct))})")
        return None
    (name,) = distinct
    seconds = name.removesuffix("s")
    if not (name.endswith("s") and seconds.isdigit() and int(seconds) > 0):
        raise DataError(f"{where}: timeframe {name!r}: expected seconds such as '86400s'")
    return int(seconds)


def _timeframe_ns(times: Sequence[int], symbols: Sequence[Any], where: str) -> int:
    last: dict[Any, int] = {}
    smallest: int | None = None
    for ts, symbol in zip(times, symbols, strict=True):
        previous = last.get(symbol)
        if previous is not None and ts > previous:
            gap = ts - previous
            smallest = gap if smallest is None else min(smallest, gap)
        last[symbol] = ts
    if smallest is None:
        raise DataError(f"{where}: cannot tell the timeframe from one bar per symbol; give it")
    if smallest % NS:
        raise DataError(f"{where}: bars {smallest} ns apart: timeframes are whole seconds")
    return smallest


def _check_increasing(times: Sequence[int], symbols: Sequence[Any], where: str) -> None:
    last: dict[Any, int] = {}
    for row, (ts, symbol) in enumerate(zip(times, symbols, strict=True)):
        previous = last.get(symbol)
        if previous is not None and ts <= previous:
            raise DataError(
                f"{where}: row {row + 1}: {symbol} time does not increase ({ts} after {previous})"
            )
        last[symbol] = ts


def _quotes(
    column: Callable[[str], list[Any]],
    times: list[int],
    symbols: list[Any],
    rows: int,
    where: str,
) -> list[Event]:
    bids, bid_sizes, asks, ask_sizes = (column(name) for name in QUOTE_COLUMNS)
    price, size = money.to_price, money.to_size
    quotes: list[Event] = []
    for row in range(rows):
        bid = _number(price, bids[row], "bid_price", where, row)
        ask = _number(price, asks[row], "ask_price", where, row)
        if bid > ask:
            raise DataError(f"{where}: row {row + 1}: crossed quote: bid {bid} above ask {ask}")
        quotes.append(
            Quote(
                symbol=str(symbols[row]),
                bid_price=bid,
                bid_size=_number(size, bid_sizes[row], "bid_size", where, row),
                ask_price=ask,
                ask_size=_number(size, ask_sizes[row], "ask_size", where, row),
                ts_event_ns=times[row],
            )
        )
    return quotes


def _trades(
    column: Callable[[str], list[Any]],
    times: list[int],
    symbols: list[Any],
    rows: int,
    where: str,
) -> list[Event]:
    prices, sizes = column("price"), column("size")
    price, size = money.to_price, money.to_size
    return [
        Trade(
            symbol=str(symbols[row]),
            price=_number(price, prices[row], "price", where, row),
            size=_number(size, sizes[row], "size", where, row),
            ts_event_ns=times[row],
        )
        for row in range(rows)
    ]
