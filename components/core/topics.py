"""Every topic on the bus, in one place. Topics are prefixes: subscribing to `md.quote.` gets all
quotes, `md.` all market data."""

from __future__ import annotations

MARKET_DATA = "md."
TRADES = "md.trade."
QUOTES = "md.quote."
BARS = "md.bar."
BOOKS = "md.book."
SIGNALS = "strategy.signal"
RISK_CHECK = "risk.check"  # request/reply: CheckSignal → SignalChecked
APPROVED_ORDERS = "risk.order"
RISK_STATE = "risk.state"
FILLS_BOOKED = "risk.fill_booked"
ORDER_UPDATES = "exec.order"
FILLS = "exec.fill"
POSITION_DRIFT = "exec.drift"
HEARTBEAT = "broker.heartbeat"


def trade(symbol: str) -> str:
    return f"{TRADES}{symbol}"


def quote(symbol: str) -> str:
    return f"{QUOTES}{symbol}"


def bar(timeframe: str, symbol: str) -> str:
    return f"{BARS}{timeframe}.{symbol}"


def book(symbol: str) -> str:
    return f"{BOOKS}{symbol}"
