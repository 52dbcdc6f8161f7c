"""What market data a process holds in memory, bounded, and the Parquet archive of closed bars.

`MarketDataStore` keeps, per symbol, the last quote and the last `trade_history` trades (a ring
buffer), and per symbol and timeframe the last `bar_history` closed bars. It is fed the events as
they are published (or, in another process, as they are received from the bus: it needs nothing
but the events), and read by whoever needs recent history, e.g. a strategy warming up its
indicators. Memory is bounded by construction: deques with a maximum length. Bars are kept packed
(msgpack of their numbers, Decimals as exact text: ~120 bytes instead of ~900 for a `Bar` and its
seven Decimal objects) and unpacked when read, so that a symbol's 1,000 bars in each of three
timeframes fit in well under a megabyte.

`BarArchive` appends closed bars to Parquet files (layout of `marketdata.parquet`), one file per
timeframe per flush, under `<dir>/<timeframe>/`. Bars wait in memory until `flush_every` of them
are pending or `flush()` is called (on a timer and at shutdown): a bar is derived data, which the
trades can rebuild, so a crash costs at most the unflushed ones, never a trade.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec

from components.core.events import Bar, Quote, Trade
from components.marketdata import parquet

log = logging.getLogger(__name__)
T = TypeVar("T")

_Packed = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int, int, int]
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(_Packed).decode


def _packed(bar: Bar) -> bytes:
    return _pack(
        (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.trade_count,
         bar.ts_open_ns, bar.ts_close_ns)
    )  # fmt: skip


def _unpacked(symbol: str, timeframe: str, packed: bytes) -> Bar:
    o, h, low, c, volume, vwap, count, ts_open_ns, ts_close_ns = _unpack(packed)
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=volume,
        vwap=vwap,
        trade_count=count,
        ts_open_ns=ts_open_ns,
        ts_close_ns=ts_close_ns,
    )


class MarketDataStore:
    def __init__(self, trade_history: int = 10_000, bar_history: int = 1_000) -> None:
        if trade_history < 1 or bar_history < 1:
            raise ValueError("trade_history and bar_history must be >= 1")
        self.trade_history = trade_history
        self.bar_history = bar_history
        self._quotes: dict[str, Quote] = {}
        self._trades: dict[str, collections.deque[Trade]] = {}
        self._bars: dict[tuple[str, str], collections.deque[bytes]] = {}

    def on_quote(self, quote: Quote) -> None:
        self._quotes[quote.symbol] = quote

    def on_trade(self, trade: Trade) -> None:
        trades = self._trades.get(trade.symbol)
        if trades is None:
            trades = self._trades[trade.symbol] = collections.deque(maxlen=self.trade_history)
        trades.append(trade)

    def on_bar(self, bar: Bar) -> None:
        key = (bar.symbol, bar.timeframe)
        bars = self._bars.get(key)
        if bars is None:
            bars = self._bars[key] = collections.deque(maxlen=self.bar_history)
        bars.append(_packed(bar))

    def last_quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def last_trade(self, symbol: str) -> Trade | None:
        trades = self._trades.get(symbol)
        return trades[-1] if trades else None

    def trades(self, symbol: str, count: int | None = None) -> list[Trade]:
        """The last `count` trades (all kept if None), oldest first."""
        return _last(self._trades.get(symbol, ()), count)

    def bars(self, symbol: str, timeframe: str, count: int | None = None) -> list[Bar]:
        """The last `count` closed bars of a timeframe (all kept if None), oldest first."""
        packed = _last(self._bars.get((symbol, timeframe), ()), count)
        return [_unpacked(symbol, timeframe, item) for item in packed]

    def timeframes(self, symbol: str) -> list[str]:
        return sorted(timeframe for sym, timeframe in self._bars if sym == symbol)


def _last(items: Iterable[T], count: int | None) -> list[T]:
    kept = list(items)
    return kept if count is None else kept[max(0, len(kept) - count) :]


class BarArchive:
    def __init__(self, directory: str | Path, flush_every: int = 10_000) -> None:
        self.directory = Path(directory)
        self.flush_every = flush_every
        self.files_written = 0
        self._pending: dict[str, list[Bar]] = {}
        self._count = 0

    def add(self, bar: Bar) -> None:
        self._pending.setdefault(bar.timeframe, []).append(bar)
        self._count += 1
        if self._count >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write every pending bar; a file that cannot be written keeps its bars pending."""
        for timeframe, bars in list(self._pending.items()):
            if not bars:
                continue
            first = bars[0].ts_open_ns
            path = self.directory / timeframe / f"bars-{first}-{self.files_written:06d}.parquet"
            try:
                parquet.write(path, parquet.bars_table(bars))
            except OSError as exc:
                log.error("Could not write %d bars to %s: %s; kept for the next try.",
                          len(bars), path, exc)  # fmt: skip
                continue
            self.files_written += 1
            self._count -= len(bars)
            del self._pending[timeframe]
