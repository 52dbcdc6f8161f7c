"""The event-driven backtest: market events in time order, on a simulated clock, through the same
strategy, risk manager and simulated exchange as a live run.

What each part does, and whose code it is:

- the strategy (`components.strategy`) sees every bar (and quote, trade, fill, timer tick it
  handles) and returns intents, exactly as in `strategy.service`;
- each intent becomes `Signal`s sized here (the live engine sizes with `order_quantity`), which
  the risk manager approves or rejects (`backtest.risk`: its own engine when the backtest has a
  risk config, its limits and book alone otherwise, which decide alike);
- an approved order goes to the simulated exchange (`execution.venues.matching`), whose reports
  pass through the execution engine's order lifecycle (`execution.lifecycle`); it fills against a
  quote, charging its fees and slippage; for bar data the quote is made from the fill price (the
  next bar's open or this bar's close) with the configured spread;
- fills and order updates go back to the risk manager, whose position book (`risk.positions`)
  holds cash, positions, realized P&L and fees; every round trip's P&L is read from it.

Given a risk config (`risk=`, e.g. a TradingSystem spec's), the risk manager sees every price, so
its circuit breaker and stops act as they would live (a stop's exit fills at the price that hit
it). Without one, only the backtest's `max_position` / `max_notional` limit anything.

Time is the data's: the clock is set to each event's time (a bar's open when it fills pending
orders, its close when the strategy sees it), and everything stamped (fills, ids) follows it, so
the same input gives the same output, byte for byte.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, Decimal, DecimalException
from typing import NamedTuple

from components.backtest import risk as gates
from components.backtest.config import BacktestConfig
from components.core.config import (
    RiskConfig,
    SimulatedVenueConfig,
    TradingSystemSpec,
    parse_spec,
)
from components.core.errors import ConfigError
from components.core.events import Bar, Fill, Order, OrderStatus, Quote, Side, Signal
from components.core.events import Trade as TradePrint
from components.core.money import MONEY_CONTEXT
from components.execution import lifecycle
from components.execution.venues.matching import MatchingEngine
from components.risk.positions import PositionBook
from components.strategy.base import Intent, Strategy

ZERO = Decimal(0)
BPS = Decimal("0.0001")
HALF = Decimal("0.5")

Event = Bar | Quote | TradePrint
Progress = Callable[[int], None]
PROGRESS_EVERY = 10_000  # events between two progress calls


@dataclasses.dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position from opening to closing: its P&L is the book's realized P&L over that span
    (net of the entry's and the exit's fees)."""

    symbol: str
    side: Side  # buy: long, sell: short
    quantity: Decimal
    entry_ts_ns: int
    entry_price: Decimal
    exit_ts_ns: int
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal

    @property
    def return_pct(self) -> float:
        return float(self.pnl / (self.entry_price * self.quantity)) * 100


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    ts_ns: int
    symbol: str
    side: Side
    quantity: Decimal
    reason: str


class EquityPoint(NamedTuple):  # a tuple: one is made per bar, and a tuple is made fastest
    ts_ns: int
    equity: Decimal
    exposed: bool  # a position was open at this point


@dataclasses.dataclass
class _Open:
    side: Side
    quantity: Decimal
    entry_ts_ns: int
    entry_price: Decimal
    realized_before: Decimal
    fees_before: Decimal


@dataclasses.dataclass
class BacktestRun:
    """Everything a backtest produced; `stats.compute` summarizes it."""

    strategy: str
    config: BacktestConfig
    equity: list[EquityPoint]
    round_trips: list[RoundTrip]
    fills: list[Fill]
    rejected: list[Rejected]
    events: int
    book: PositionBook


def _time(event: Event) -> int:
    return event.ts_open_ns if isinstance(event, Bar) else event.ts_event_ns


def _check_fill_model(config: BacktestConfig, events: Sequence[Event]) -> None:
    if not events:
        return
    bars = isinstance(events[0], Bar)
    if bars != (config.fill != "quote"):
        kind = "bars" if bars else f"{type(events[0]).__name__.lower()}s"
        wanted = "next_open or close" if bars else "quote"
        raise ConfigError(
            "backtest", [f"fill: {config.fill} cannot fill orders on {kind}; use {wanted}"]
        )


class Backtest:
    """One run of one strategy over one series of events; `run` once."""

    def __init__(
        self, strategy: Strategy, config: BacktestConfig, risk: RiskConfig | None = None
    ) -> None:
        self.strategy = strategy
        self.config = config
        self.risk_config = risk
        self.monitor = risk is not None  # every price to the risk engine: breaker and stops act
        self.risk: gates.RiskGate | None = None  # made by `run`, which knows the symbols
        self.now_ns = 0
        venue = SimulatedVenueConfig(
            latency_ms=0,
            fee_per_order=config.commission_per_order,
            fee_per_share=config.commission_per_share,
            fee_rate=config.commission_rate,
            slippage_bps=config.slippage_bps,
            tick_size=config.tick_size,
        )
        self.exchange = MatchingEngine(venue, self._clock)
        self.quotes: dict[str, Quote] = {}
        self.equity: list[EquityPoint] = []
        self.round_trips: list[RoundTrip] = []
        self.fills: list[Fill] = []
        self.rejected: list[Rejected] = []
        self._open: dict[str, _Open] = {}
        self._pending: dict[str, list[Intent]] = {}  # waiting for the next bar's open
        self._last: dict[str, Decimal] = {}  # last bar or trade price per symbol
        self._quoted: dict[str, Decimal] = {}  # the price the exchange's quote was made from
        self._ids = itertools.count(1)
        self._half_spread = config.spread_bps * BPS * HALF
        self._exposed = False  # some position is open
        self._held: list[tuple[str, Decimal]] = []  # (symbol, quantity) of each open position
        self._after_fill: list[Intent] = []  # the strategy's intents on a fill, not yet acted on
        self._next_timer_ns: int | None = None

    def _clock(self) -> int:
        return self.now_ns

    @property
    def book(self) -> PositionBook:
        """The risk manager's position book: the one account of the run."""
        assert self.risk is not None, "run() makes the risk gate"
        return self.risk.book

    def _risk_spec(self, symbols: list[str]) -> TradingSystemSpec:
        config = self.config
        risk = self.risk_config or RiskConfig(limits=gates.NO_LIMITS, breaker=gates.NO_BREAKER)
        updates: dict[str, Decimal] = {}
        if config.max_position is not None:
            updates["max_position"] = config.max_position
        if config.max_notional is not None:
            updates["max_notional"] = config.max_notional
        document = {
            "symbols": symbols,
            "risk": {
                **risk.model_dump(mode="json"),
                "initial_cash": str(config.initial_cash),
                "limits": {**risk.limits.model_dump(mode="json"), **updates},
            },
        }
        # Problems name the field: `symbols.0: String should match pattern ... (was 'btc-usd')`.
        return parse_spec(document, "backtest (symbols of the data, the risk manager's config)")[1]

    # --- the loop ---------------------------------------------------------------------------

    def run(
        self,
        events: Sequence[Event],
        progress: Progress | None = None,
        progress_every: int = PROGRESS_EVERY,
    ) -> BacktestRun:
        """Feed `events` (in time order) through; close what is open at the end if configured.

        Bars fill at `next_open` or `close`; quotes and trades at `quote` (the quote, or the
        trade's price with the configured spread): another pairing is a `ConfigError`.
        """
        _check_fill_model(self.config, events)
        symbols = sorted({event.symbol for event in events})
        spec = self._risk_spec(symbols or ["NONE"])
        self.risk = gates.FullRisk(spec) if self.monitor else gates.LimitsOnly(spec)
        self.risk.start(_time(events[0]) if events else 0)
        strategy = self.strategy
        on_bar = strategy.on_bar
        on_quote = strategy.on_quote if strategy.handles("on_quote") else None
        on_trade = strategy.on_trade if strategy.handles("on_trade") else None
        timer_ns = (
            None if strategy.timer_interval_s is None else int(strategy.timer_interval_s * 1e9)
        )
        if timer_ns is not None and timer_ns <= 0:
            raise ConfigError("backtest", [f"timer_interval_s: must be > 0 (was {timer_ns} ns)"])
        fill_at_open = self.config.fill == "next_open"
        monitor = self.monitor
        book = self.book
        risk = self.risk
        last = self._last
        marks = book.marks  # `book.mark`, inlined: once per event
        pending = self._pending
        points = self.equity
        append_point = points.append
        # `EquityPoint(...)` less its Python-level `__new__`: a point is made per event.
        new_tuple, point_of = tuple.__new__, EquityPoint
        add, multiply = MONEY_CONTEXT.add, MONEY_CONTEXT.multiply
        for count, event in enumerate(events, 1):
            if isinstance(event, Bar):
                symbol = event.symbol
                if fill_at_open and symbol in pending:
                    self.now_ns = event.ts_open_ns
                    last[symbol] = event.open
                    for intent in pending.pop(symbol):
                        self._act(intent)
                now = self.now_ns = event.ts_close_ns
                if timer_ns is not None:
                    self._timers(timer_ns, now)
                close = last[symbol] = event.close
                if monitor:
                    self._quote_for(symbol)  # the breaker and stops see every close
                marks[symbol] = close  # after the quote's mid: the close as written
                intent = on_bar(event)
            elif isinstance(event, Quote):
                now = self.now_ns = event.ts_event_ns
                if timer_ns is not None:
                    self._timers(timer_ns, now)
                self._quote(event)
                book.mark(event.symbol, event.mid)
                intent = on_quote(event) if on_quote is not None else None
            else:
                now = self.now_ns = event.ts_event_ns
                if timer_ns is not None:
                    self._timers(timer_ns, now)
                last[event.symbol] = event.price
                risk.on_trade(event)
                if monitor:
                    self._quote_for(event.symbol)
                book.mark(event.symbol, event.price)
                intent = on_trade(event) if on_trade is not None else None
            if intent is not None:
                self._intend(intent)
            # `_record`, inlined: it runs once per event. Flat, equity is the cash; exposed, the
            # cash plus each open quantity at its mark, exact in MONEY_CONTEXT (which raises
            # rather than rounds: then, or for a symbol not marked yet, the book's own way).
            exposed = self._exposed
            if exposed:
                try:
                    value = book.cash
                    for held_symbol, held in self._held:
                        value = add(value, multiply(held, marks[held_symbol]))
                except (KeyError, DecimalException):
                    value = book.equity()
            else:
                value = book.cash
            point = new_tuple(point_of, (now, value, exposed))
            if points and points[-1][0] == now:
                points[-1] = point  # several symbols' bars at one time: one point
            else:
                append_point(point)
            if progress is not None and count % progress_every == 0:
                progress(count)
        if self.config.close_at_end:
            self._close_everything()
        if progress is not None:
            progress(len(events))
        return BacktestRun(
            strategy=strategy.name,
            config=self.config,
            equity=self.equity,
            round_trips=self.round_trips,
            fills=self.fills,
            rejected=self.rejected,
            events=len(events),
            book=self.book,
        )

    def _timers(self, interval_ns: int, now: int) -> None:
        if self._next_timer_ns is None:
            self._next_timer_ns = now - now % interval_ns + interval_ns
            return
        while self._next_timer_ns <= now:
            self.now_ns = self._next_timer_ns
            intent = self.strategy.on_timer(self._next_timer_ns)
            if intent is not None:
                self._intend(intent)
            self._next_timer_ns += interval_ns
        self.now_ns = now

    def _record(self, now: int) -> None:
        # Flat, equity is the cash: most bars of most strategies need no valuation.
        exposed = self._exposed
        point = EquityPoint(now, self.book.equity() if exposed else self.book.cash, exposed)
        equity = self.equity
        if equity and equity[-1].ts_ns == now:
            equity[-1] = point  # several symbols' bars at one time: one point
        else:
            equity.append(point)

    # --- prices -----------------------------------------------------------------------------

    def _quote_for(self, symbol: str) -> None:
        """Make the quote an order of `symbol` fills against now from the last bar or trade
        price, if that changed since the last quote made (only when an order needs one: most
        bars trade nothing)."""
        price = self._last.get(symbol)
        if price is not None and self._quoted.get(symbol) != price:
            self._quoted[symbol] = price
            self._price(symbol, price)

    def _price(self, symbol: str, price: Decimal) -> None:
        half = price * self._half_spread
        self._quote(
            Quote(
                symbol=symbol,
                bid_price=price - half,
                bid_size=ZERO,
                ask_price=price + half,
                ask_size=ZERO,
                ts_event_ns=self.now_ns,
            )
        )

    def _quote(self, quote: Quote) -> None:
        """The exchange and the risk engine see `quote`; exits the risk engine's stops approve
        are sent at once."""
        self.quotes[quote.symbol] = quote
        self.exchange.on_quote(quote)
        assert self.risk is not None
        for exit_order in self.risk.on_quote(quote, self.now_ns):
            self._submit(exit_order)

    # --- intents to orders ------------------------------------------------------------------

    def _intend(self, intent: Intent) -> None:
        if self.config.fill == "next_open":
            self._pending.setdefault(intent.symbol, []).append(intent)
        else:
            self._act(intent)

    def _act(self, intent: Intent) -> None:
        """Trade on `intent` now: close an opposite position, then open one (if allowed)."""
        config = self.config
        symbol, side = intent.symbol, intent.side
        self._quote_for(symbol)
        held = self.book.quantity(symbol)
        if held * side.sign > 0:
            return  # already positioned this way: one position per symbol, no pyramiding
        if held:
            if not self._execute(symbol, side, abs(held), f"{intent.reason} (close)"):
                return
            if config.on_opposite == "close":
                return
        if side is Side.SELL and not config.allow_short:
            return
        quantity = self._size(symbol, side)
        if quantity > 0:
            self._execute(symbol, side, quantity, intent.reason)
        else:
            self._reject(symbol, side, quantity, "INSUFFICIENT_EQUITY")

    def _size(self, symbol: str, side: Side) -> Decimal:
        config = self.config
        if config.sizing == "fixed":
            return config.quantity
        price = self.exchange.taker_price(symbol, side)
        if price is None:
            return ZERO
        # Whole units whose value and fees fit in the share of equity:
        # units x price x (1 + rate) + units x per_share + per_order <= equity x fraction
        budget = self.book.equity() * config.fraction - config.commission_per_order
        unit_cost = price * (1 + config.commission_rate) + config.commission_per_share
        if budget <= 0:
            return ZERO
        return (budget / unit_cost).to_integral_value(rounding=ROUND_FLOOR)

    def _execute(self, symbol: str, side: Side, quantity: Decimal, reason: str) -> bool:
        """Ask the risk engine, then fill the approved order at the exchange; True once filled."""
        assert self.risk is not None
        signal = Signal(
            signal_id=f"bt-signal-{next(self._ids)}",
            strategy=self.strategy.name,
            symbol=symbol,
            side=side,
            quantity=quantity,
            ts_event_ns=self.now_ns,
            ts_origin_ns=self.now_ns,
            reason=reason,
        )
        decision = self.risk.check(signal, self.now_ns)
        if isinstance(decision, str):
            self._reject(symbol, side, quantity, decision)
            return False
        return self._submit(decision)

    def _submit(self, order: Order) -> bool:
        """The live engine's path: the exchange's reports through the order's lifecycle, fills
        and updates to the risk engine. True once (partly) filled."""
        assert self.risk is not None
        state = lifecycle.OrderState(order, self.exchange.name)
        filled = False
        for report in self.exchange.submit(order):
            outcome = state.apply(report)
            if outcome.fill is not None:
                self._book(outcome.fill)
                filled = True
            if outcome.update is not None:
                self.risk.on_update(outcome.update, self.now_ns)
            if report.status is OrderStatus.REJECTED:
                self._reject(order.symbol, order.side, order.quantity, report.reason)
        # What the strategy wants after a fill waits until this order is done with.
        while self._after_fill:
            self._intend(self._after_fill.pop(0))
        return filled

    def _reject(self, symbol: str, side: Side, quantity: Decimal, reason: str) -> None:
        self.rejected.append(Rejected(self.now_ns, symbol, side, quantity, reason))

    def _book(self, fill: Fill) -> None:
        book = self.book
        symbol = fill.symbol
        holding = book.holdings.get(symbol)
        before = holding.quantity if holding else ZERO
        if before == 0:
            self._open[symbol] = _Open(
                side=fill.side,
                quantity=fill.quantity,
                entry_ts_ns=fill.ts_event_ns,
                entry_price=fill.price,
                realized_before=holding.realized_pnl if holding else ZERO,
                fees_before=holding.fees if holding else ZERO,
            )
        assert self.risk is not None
        self.risk.on_fill(fill, self.now_ns)
        self.fills.append(fill)
        # What is open, for the equity at every event: it changes only here.
        self._held = [(s, h.quantity) for s, h in book.holdings.items() if h.quantity]
        self._exposed = bool(self._held)
        holding = book.holdings[symbol]
        if before != 0 and holding.quantity == 0:
            opened = self._open.pop(symbol)
            self.round_trips.append(
                RoundTrip(
                    symbol=symbol,
                    side=opened.side,
                    quantity=opened.quantity,
                    entry_ts_ns=opened.entry_ts_ns,
                    entry_price=opened.entry_price,
                    exit_ts_ns=fill.ts_event_ns,
                    exit_price=fill.price,
                    fees=holding.fees - opened.fees_before,
                    pnl=holding.realized_pnl - opened.realized_before,
                )
            )
        intent = self.strategy.on_fill(fill)
        if intent is not None:
            self._after_fill.append(intent)

    def _close_everything(self) -> None:
        for symbol in sorted(self.book.holdings):
            held = self.book.quantity(symbol)
            if not held:
                continue
            self._quote_for(symbol)
            self._execute(symbol, Side.SELL if held > 0 else Side.BUY, abs(held), "end of data")
        self._pending.clear()
        if self.equity:
            self._record(self.now_ns)
