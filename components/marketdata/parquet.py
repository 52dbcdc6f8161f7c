"""Market data in Parquet files: one kind per file, the layout `tradingsystem data fetch` writes,
closed bars are persisted in, and both the replay and the backtest (`backtest/data.py`) read.

    bars    ts_ns, symbol, timeframe, open, high, low, close, volume, vwap, trade_count
    quotes  ts_ns, symbol, bid_price, bid_size, ask_price, ask_size
    trades  ts_ns, symbol, price, size

`ts_ns` is int64 nanoseconds since the epoch (a bar's open); `trade_count` is int64; prices and
sizes are strings holding the exact decimal (a float column would round them, and Parquet's
decimal type needs one scale for a whole column). Files are written whole to a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from components.core.events import Bar, Quote, Trade

BAR_SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("open", pa.string()),
        ("high", pa.string()),
        ("low", pa.string()),
        ("close", pa.string()),
        ("volume", pa.string()),
        ("vwap", pa.string()),
        ("trade_count", pa.int64()),
    ]
)
QUOTE_SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("symbol", pa.string()),
        ("bid_price", pa.string()),
        ("bid_size", pa.string()),
        ("ask_price", pa.string()),
        ("ask_size", pa.string()),
    ]
)
TRADE_SCHEMA = pa.schema(
    [("ts_ns", pa.int64()), ("symbol", pa.string()), ("price", pa.string()), ("size", pa.string())]
)


def bars_table(bars: Sequence[Bar]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "ts_ns": [b.ts_open_ns for b in bars],
            "symbol": [b.symbol for b in bars],
            "timeframe": [b.timeframe for b in bars],
            "open": [str(b.open) for b in bars],
            "high": [str(b.high) for b in bars],
            "low": [str(b.low) for b in bars],
            "close": [str(b.close) for b in bars],
            "volume": [str(b.volume) for b in bars],
            "vwap": [str(b.vwap) for b in bars],
            "trade_count": [b.trade_count for b in bars],
        },
        schema=BAR_SCHEMA,
    )


def quotes_table(quotes: Sequence[Quote]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "ts_ns": [q.ts_event_ns for q in quotes],
            "symbol": [q.symbol for q in quotes],
            "bid_price": [str(q.bid_price) for q in quotes],
            "bid_size": [str(q.bid_size) for q in quotes],
            "ask_price": [str(q.ask_price) for q in quotes],
            "ask_size": [str(q.ask_size) for q in quotes],
        },
        schema=QUOTE_SCHEMA,
    )


def trades_table(trades: Sequence[Trade]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "ts_ns": [t.ts_event_ns for t in trades],
            "symbol": [t.symbol for t in trades],
            "price": [str(t.price) for t in trades],
            "size": [str(t.size) for t in trades],
        },
        schema=TRADE_SCHEMA,
    )


def write(path: str | Path, table: pa.Table) -> None:
    """Write `table` to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    with partial.open("rb") as file:
        os.fsync(file.fileno())
    partial.replace(path)


def kind_of(columns: Sequence[str]) -> str:
    """`bar`, `quote` or `trade`, from the columns a file holds; ValueError if none fits."""
    names = set(columns)
    if {"open", "high", "low", "close"} <= names:
        return "bar"
    if {"bid_price", "bid_size", "ask_price", "ask_size"} <= names:
        return "quote"
    if {"price", "size"} <= names:
        return "trade"
    raise ValueError(f"columns {sorted(names)} hold neither bars, quotes nor trades")


def rows(path: str | Path, batch_rows: int = 65_536) -> tuple[str, Iterator[dict[str, str]]]:
    """The file's kind and its rows as text (as a CSV row would be), read in batches.

    Raises `OSError` or `ValueError` (pyarrow's errors are ValueErrors) if the file is unreadable
    or holds no kind we know, or lacks a `ts_ns` or `symbol` column."""
    file = pq.ParquetFile(path)
    columns = file.schema_arrow.names
    kind = kind_of(columns)
    missing = [name for name in ("ts_ns", "symbol") if name not in columns]
    if missing:
        raise ValueError(f"lacks column(s) {', '.join(missing)}")

    def generate() -> Iterator[dict[str, str]]:
        for batch in file.iter_batches(batch_size=batch_rows):
            data = batch.to_pydict()
            for index in range(batch.num_rows):
                row = {name: _text(values[index]) for name, values in data.items()}
                row["ts"] = row.pop("ts_ns")
                row["kind"] = kind
                yield row

    return kind, generate()


def _text(value: object) -> str:
    return "" if value is None else str(value)
