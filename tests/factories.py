"""Market data for tests, with exact prices from text: `quote("99.98", "100.02")`."""

from __future__ import annotations

from decimal import Decimal

from components.core.events import Bar, Quote


def quote(
    bid: str, ask: str, symbol: str = "AAPL", *, size: int = 100, ts_event_ns: int = 1
) -> Quote:
    return Quote(
        symbol=symbol,
        bid_price=Decimal(bid),
        bid_size=Decimal(size),
        ask_price=Decimal(ask),
        ask_size=Decimal(size),
        ts_event_ns=ts_event_ns,
    )


def flat_bar(close: str, symbol: str = "AAPL") -> Bar:
    """A 1 s bar whose open, high, low, close and VWAP are all `close`."""
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        timeframe="1s",
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1),
        vwap=price,
        trade_count=1,
        ts_open_ns=0,
        ts_close_ns=1,
    )
