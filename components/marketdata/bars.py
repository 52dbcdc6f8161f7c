"""OHLCV bars built from trades, one `BarBuilder` per timeframe, all symbols in each.

A bar covers `[k * interval, (k + 1) * interval)` in event time, aligned to the Unix epoch, so the
bars of every component and every run line up. It closes when a trade of a later interval arrives
(that trade opens the next bar) or when `close_due` sees the clock at or past its end, whichever
comes first. Policies:

- An interval without trades produces no bar: a bar says what traded, and a flat bar copied from
  the last close would feed indicators a price nobody paid.
- A trade older than the open bar, or than a bar already closed, is late: it is counted in
  `late_trades` and dropped, because a published bar is never revised.

VWAP is `sum(price * size) / sum(size)`, with both sums exact; only the division rounds, at the
`Decimal` context's 28 significant digits. Pure logic: no I/O, no clock of its own.
"""

from __future__ import annotations

from decimal import Decimal

from components.core.events import Bar, Trade

_NS_PER_S = 1_000_000_000


class _OpenBar:
    __slots__ = ("close", "high", "low", "notional", "open", "trade_count", "ts_open_ns", "volume")

    def __init__(self, ts_open_ns: int, trade: Trade) -> None:
        self.ts_open_ns = ts_open_ns
        self.open = self.high = self.low = self.close = trade.price
        self.volume = trade.size
        self.notional = trade.price * trade.size
        self.trade_count = 1


class BarBuilder:
    """Bars of one timeframe: `BarBuilder(60)` builds `1m`-style bars named `60s` by default."""

    def __init__(self, interval_s: int, timeframe: str | None = None) -> None:
        if interval_s < 1:
            raise ValueError(f"interval_s must be >= 1 (was {interval_s})")
        self.interval_ns = interval_s * _NS_PER_S
        self.timeframe = timeframe or f"{interval_s}s"
        self.late_trades = 0
        self._open: dict[str, _OpenBar] = {}
        self._closed_until_ns: dict[str, int] = {}

    def on_trade(self, trade: Trade) -> Bar | None:
        """Add `trade`; return the bar it closed, if it belongs to a later interval."""
        ts_ns = trade.ts_event_ns
        ts_open_ns = ts_ns - ts_ns % self.interval_ns
        symbol = trade.symbol
        current = self._open.get(symbol)
        if current is not None:
            if ts_open_ns == current.ts_open_ns:  # the common case, inlined: no call
                price, size = trade.price, trade.size
                if price > current.high:
                    current.high = price
                elif price < current.low:
                    current.low = price
                current.close = price
                current.volume += size
                current.notional += price * size
                current.trade_count += 1
                return None
            if ts_open_ns < current.ts_open_ns:
                self.late_trades += 1
                return None
        elif ts_open_ns < self._closed_until_ns.get(symbol, ts_open_ns):
            # An open bar always starts at or after the last closed one's end, so this check
            # is only needed when there is none.
            self.late_trades += 1
            return None
        self._open[symbol] = _OpenBar(ts_open_ns, trade)
        return self._finish(symbol, current) if current is not None else None

    def close_due(self, now_ns: int) -> list[Bar]:
        """Close every bar whose interval has ended by `now_ns`."""
        due = [s for s, bar in self._open.items() if bar.ts_open_ns + self.interval_ns <= now_ns]
        return [self._finish(symbol, self._open.pop(symbol)) for symbol in due]

    def close_all(self) -> list[Bar]:
        """Close every open bar, ended or not: the feed has no more trades to give."""
        symbols = list(self._open)
        return [self._finish(symbol, self._open.pop(symbol)) for symbol in symbols]

    def _finish(self, symbol: str, bar: _OpenBar) -> Bar:
        ts_close_ns = bar.ts_open_ns + self.interval_ns
        self._closed_until_ns[symbol] = ts_close_ns
        vwap: Decimal = bar.notional / bar.volume if bar.volume else bar.close
        return Bar(
            symbol=symbol,
            timeframe=self.timeframe,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            vwap=vwap,
            trade_count=bar.trade_count,
            ts_open_ns=bar.ts_open_ns,
            ts_close_ns=ts_close_ns,
        )
