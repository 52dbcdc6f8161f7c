"""The risk manager as the backtest drives it, in one of two ways that decide alike.

- `FullRisk` is the risk manager's own engine (`risk.engine.RiskEngine`, as `risk.service` runs
  it, without a state log): validation, halt, circuit breaker, every limit, stops, sessions, and
  a record for each approval, fill and order update. The backtest uses it when it is given a risk
  config (a TradingSystem's), and then hands it every price, so that its breaker and stops act as
  they would live.
- `LimitsOnly` is the same validation and limits (`risk.lifecycle.validate`, `limits.from_config`,
  as the engine builds them) and the same position book (`risk.positions`), without the breaker,
  stops or records: what a backtest without a risk config needs (its breaker could not trip, it
  has no stops), at a fraction of the cost per order. The tests run both on the same data and
  require the same result.

Either way `check` returns the approved `Order`, or the rejection as `CODE: key=value, ...`, and
the account is `book`.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Protocol

from components.core.config import BreakerConfig, RiskLimits, TradingSystemSpec
from components.core.events import Fill, Order, OrderUpdate, Quote, Signal, Trade
from components.risk import lifecycle, limits
from components.risk.engine import RiskEngine
from components.risk.positions import PositionBook

DEADLINE_NS = 1_000_000_000  # a signal is checked at once: any deadline ahead will do
ID_PREFIX = "bt"

# Without a risk config, nothing is limited that the backtest's settings do not limit.
NO_LIMITS = RiskLimits(
    max_position=Decimal("1e15"),
    max_notional=Decimal("1e18"),
    max_concentration_pct=Decimal(1000),
    max_open_orders=10_000,
    max_order_quantity=Decimal("1e15"),
    max_order_value=Decimal("1e18"),
)
NO_BREAKER = BreakerConfig(
    max_daily_loss=Decimal("1e18"), max_drawdown_pct=Decimal(100), max_move_pct=Decimal(100)
)


class RiskGate(Protocol):
    book: PositionBook

    def start(self, now_ns: int) -> None: ...
    def check(self, signal: Signal, now_ns: int) -> Order | str: ...
    def on_quote(self, quote: Quote, now_ns: int) -> list[Order]: ...
    def on_trade(self, trade: Trade) -> None: ...
    def on_fill(self, fill: Fill, now_ns: int) -> None: ...
    def on_update(self, update: OrderUpdate, now_ns: int) -> None: ...


class FullRisk:
    def __init__(self, spec: TradingSystemSpec) -> None:
        self.engine = RiskEngine(spec, id_prefix=ID_PREFIX)

    @property
    def book(self) -> PositionBook:
        return self.engine.state.book  # not kept: opening the log makes a new book

    def start(self, now_ns: int) -> None:
        self.engine.start("backtest", now_ns)

    def check(self, signal: Signal, now_ns: int) -> Order | str:
        decision = self.engine.check(signal, now_ns + DEADLINE_NS, now_ns)
        if isinstance(decision, lifecycle.Approved):
            return decision.order
        if isinstance(decision, lifecycle.Rejected):
            return decision.rejection.message
        return f"ALREADY_APPROVED: signal={signal.signal_id}"

    def on_quote(self, quote: Quote, now_ns: int) -> list[Order]:
        """Exits that the stops called for and the engine approved."""
        return [approved.order for approved in self.engine.on_quote(quote, now_ns)]

    def on_trade(self, trade: Trade) -> None:
        self.engine.on_trade(trade)

    def on_fill(self, fill: Fill, now_ns: int) -> None:
        self.engine.on_fill(fill, now_ns)

    def on_update(self, update: OrderUpdate, now_ns: int) -> None:
        self.engine.on_order_update(update, now_ns)


class LimitsOnly:
    def __init__(self, spec: TradingSystemSpec) -> None:
        self.symbols = frozenset(spec.symbols)
        self.limits = limits.from_config(spec.risk.limits, self.symbols)
        self.book = PositionBook(spec.risk.initial_cash)
        self.quotes: dict[str, Quote] = {}
        self.last_trades: dict[str, Decimal] = {}
        self._ids = itertools.count(1)

    def start(self, now_ns: int) -> None:
        """Nothing to open: no state log, no session."""

    def check(self, signal: Signal, now_ns: int) -> Order | str:
        validated = lifecycle.validate(
            lifecycle.Unchecked(signal, now_ns + DEADLINE_NS), self.symbols, now_ns
        )
        if isinstance(validated, lifecycle.Rejected):
            return validated.rejection.message
        if limits.order_price(self.quotes.get(signal.symbol), signal.side) is None:
            return limits.Rejection.of(limits.RejectReason.NO_PRICE, symbol=signal.symbol).message
        book = self.book
        context = limits.Context(
            # Orders fill as they are sent: nothing is pending when the next one is checked.
            exposures={s: limits.Exposure(h.quantity) for s, h in book.holdings.items()},
            quotes=self.quotes,
            last_trades=self.last_trades,
            equity=book.equity(),
        )
        for limit in self.limits:
            rejection = limit.check(signal, context)
            if rejection is not None:
                return rejection.message
        return lifecycle.approve(validated, f"{ID_PREFIX}-{next(self._ids)}", now_ns).order

    def on_quote(self, quote: Quote, now_ns: int) -> list[Order]:
        self.quotes[quote.symbol] = quote
        self.book.mark(quote.symbol, quote.mid)
        return []

    def on_trade(self, trade: Trade) -> None:
        self.last_trades[trade.symbol] = trade.price

    def on_fill(self, fill: Fill, now_ns: int) -> None:
        self.book.apply_fill(fill)

    def on_update(self, update: OrderUpdate, now_ns: int) -> None:
        """No approvals are kept: nothing to release."""
