"""Pre-trade limits: each limit's `check` returns a `Rejection` or `None`.

Exposure is the worst case: a symbol's position plus every approved-but-unfilled order on the same
side (pending orders may all fill, the opposite ones may not). An order that does not increase the
worst-case exposure is never rejected by an exposure limit (position, notional, concentration), so
that a position above a (lowered) limit can always be reduced. Per-order limits (quantity, value,
price collar) and the open-order count hold for every order. Prices come from the last quote: ask
for a buy, bid for a sell; other symbols' exposure is valued at their mid. No price, no approval
(on doubt, reject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from components.core.config import RiskLimits
from components.core.events import OrderType, Quote, Side, Signal

ZERO = Decimal(0)
HUNDRED = Decimal(100)
BPS = Decimal(10_000)


class RejectReason(StrEnum):
    """Stable codes: the first word of a rejection and the `reason` label of its metric."""

    POSITION_LIMIT_EXCEEDED = "POSITION_LIMIT_EXCEEDED"
    NOTIONAL_LIMIT_EXCEEDED = "NOTIONAL_LIMIT_EXCEEDED"
    CONCENTRATION_LIMIT_EXCEEDED = "CONCENTRATION_LIMIT_EXCEEDED"
    OPEN_ORDERS_LIMIT_EXCEEDED = "OPEN_ORDERS_LIMIT_EXCEEDED"
    ORDER_QUANTITY_EXCEEDED = "ORDER_QUANTITY_EXCEEDED"
    ORDER_VALUE_EXCEEDED = "ORDER_VALUE_EXCEEDED"
    PRICE_OUTSIDE_COLLAR = "PRICE_OUTSIDE_COLLAR"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    NO_PRICE = "NO_PRICE"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    HALTED = "HALTED"
    BREAKER_OPEN = "BREAKER_OPEN"
    BREAKER_HALF_OPEN_SIZE = "BREAKER_HALF_OPEN_SIZE"
    INVALID_SIGNAL = "INVALID_SIGNAL"
    INVALID_REQUEST = "INVALID_REQUEST"
    STATE_LOG_FAILED = "STATE_LOG_FAILED"


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """`RejectReason` plus the facts that decided it, read as `CODE: key=value, ...`."""

    reason: RejectReason
    details: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, reason: RejectReason, **details: object) -> Rejection:
        return cls(reason, tuple(details.items()))

    @property
    def message(self) -> str:
        facts = ", ".join(f"{key}={value}" for key, value in self.details)
        return f"{self.reason}: {facts}" if facts else str(self.reason)

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass(frozen=True, slots=True)
class Exposure:
    """One symbol: the filled position (signed) and pending quantities per side (>= 0)."""

    position: Decimal = ZERO
    pending_buy: Decimal = ZERO
    pending_sell: Decimal = ZERO

    @property
    def worst(self) -> Decimal:
        """The largest absolute position reachable if pending orders fill."""
        return max(abs(self.position + self.pending_buy), abs(self.position - self.pending_sell))

    def with_order(self, side: Side, quantity: Decimal) -> Exposure:
        if side is Side.BUY:
            return Exposure(self.position, self.pending_buy + quantity, self.pending_sell)
        return Exposure(self.position, self.pending_buy, self.pending_sell + quantity)

    def reduced_by(self, side: Side, quantity: Decimal) -> bool:
        """Whether the order only reduces the position: even if every pending order on its side
        fills too, the position moves toward zero and does not go through it."""
        if side is Side.SELL:
            return self.position > 0 and self.position - self.pending_sell - quantity >= 0
        return self.position < 0 and self.position + self.pending_buy + quantity <= 0


OthersNotional = Callable[[str], tuple[Decimal, str | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What the limits see: exposures, the market, equity and the count of open orders.

    `others_notional(symbol)`, when given, is the gross worst-case notional of every other symbol
    and the first of them without a price (else None), kept up to date by an `ExposureBook`;
    without it `MaxNotional` adds them up from `exposures` and `quotes`.
    """

    exposures: Mapping[str, Exposure]
    quotes: Mapping[str, Quote]
    last_trades: Mapping[str, Decimal] = dataclasses.field(default_factory=dict)
    equity: Decimal = ZERO
    open_orders: int = 0
    others_notional: OthersNotional | None = None
    # Several limits ask how an order changes its symbol's exposure: worked out once per signal.
    _changes: dict[int, Change] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def exposure(self, symbol: str) -> Exposure:
        return self.exposures.get(symbol) or Exposure()

    def change(self, signal: Signal) -> Change:
        """The symbol's exposure before the order, and its worst case before and after."""
        found = self._changes.get(id(signal))
        if found is None:
            before = self.exposure(signal.symbol)
            after = before.with_order(signal.side, signal.quantity)
            found = self._changes[id(signal)] = Change(before, before.worst, after.worst)
        return found


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    before: Exposure
    worst_before: Decimal
    worst_after: Decimal


class ExposureBook:
    """Per symbol, the exposure, its worst-case notional at mid and its market value, updated
    event by event (`update` on each fill, approval, close and quote of the symbol), so that a
    check reads the totals instead of summing every symbol again.

    The totals are Decimal sums of the parts, hence exact: equal to summing them afresh.
    """

    def __init__(self) -> None:
        self.exposures: dict[str, Exposure] = {}
        self._notional: dict[str, Decimal] = {}
        self._unpriced: set[str] = set()
        self.notional_total = ZERO
        self._market: dict[str, Decimal] = {}
        self.market_value = ZERO  # positions at mid (at cost without a mid), as PositionBook

    def update(
        self, symbol: str, exposure: Exposure, mid: Decimal | None, market_value: Decimal
    ) -> None:
        if exposure.position == 0 and exposure.pending_buy == 0 and exposure.pending_sell == 0:
            self.exposures.pop(symbol, None)
        else:
            self.exposures[symbol] = exposure
        self.notional_total -= self._notional.pop(symbol, ZERO)
        self._unpriced.discard(symbol)
        worst = exposure.worst
        if worst:
            if mid is None:
                self._unpriced.add(symbol)
            else:
                notional = self._notional[symbol] = worst * mid
                self.notional_total += notional
        self.market_value += market_value - self._market.get(symbol, ZERO)
        self._market[symbol] = market_value

    def others(self, symbol: str) -> tuple[Decimal, str | None]:
        missing = next((s for s in self._unpriced if s != symbol), None)
        return self.notional_total - self._notional.get(symbol, ZERO), missing


def order_price(quote: Quote | None, side: Side) -> Decimal | None:
    """The price a market order would trade at: ask for a buy, bid for a sell."""
    if quote is None:
        return None
    return quote.ask_price if side is Side.BUY else quote.bid_price


def signal_price(signal: Signal, quote: Quote | None) -> Decimal | None:
    """The price an order is valued at: its limit price (limit, stop-limit), else where a market
    order would trade; a stop order at the higher of that and its stop price (a buy stop
    trades at or above its stop)."""
    kind = signal.order_type
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and signal.limit_price is not None:
        return signal.limit_price
    market = order_price(quote, signal.side)
    if kind is OrderType.STOP and signal.stop_price is not None and market is not None:
        return max(market, signal.stop_price)
    return market


class Limit(Protocol):
    def check(self, signal: Signal, context: Context) -> Rejection | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class AllowList:
    """Only symbols on the list may be traded."""

    symbols: frozenset[str]

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        if signal.symbol in self.symbols:
            return None
        return Rejection.of(RejectReason.SYMBOL_NOT_ALLOWED, symbol=signal.symbol)


@dataclasses.dataclass(frozen=True, slots=True)
class MaxOrderQuantity:
    """No single order above `limit` shares (a fat finger, whatever it does to the position)."""

    limit: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        if signal.quantity <= self.limit:
            return None
        return Rejection.of(
            RejectReason.ORDER_QUANTITY_EXCEEDED,
            symbol=signal.symbol,
            quantity=signal.quantity,
            limit=self.limit,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MaxOrderValue:
    """No single order worth more than `limit` at its price."""

    limit: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        price = signal_price(signal, context.quotes.get(signal.symbol))
        if price is None:
            return Rejection.of(RejectReason.NO_PRICE, symbol=signal.symbol)
        value = signal.quantity * price
        if value <= self.limit:
            return None
        return Rejection.of(
            RejectReason.ORDER_VALUE_EXCEEDED,
            symbol=signal.symbol,
            value=value,
            limit=self.limit,
            price=price,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class PriceCollar:
    """Limit and stop prices within `band_bps` of the reference: the last trade, else the
    quote's mid."""

    band_bps: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        prices = [
            (name, price)
            for name, price in (
                ("limit_price", signal.limit_price),
                ("stop_price", signal.stop_price),
            )
            if price is not None
        ]
        if not prices:
            return None  # a market order trades at the quote, which is the reference
        reference = context.last_trades.get(signal.symbol)
        if reference is None:
            quote = context.quotes.get(signal.symbol)
            if quote is None:
                return Rejection.of(RejectReason.NO_PRICE, symbol=signal.symbol)
            reference = quote.mid
        for name, price in prices:
            distance_bps = abs(price - reference) * BPS / reference
            if distance_bps > self.band_bps:
                return Rejection.of(
                    RejectReason.PRICE_OUTSIDE_COLLAR,
                    symbol=signal.symbol,
                    **{name: price},
                    reference=reference,
                    distance_bps=round(distance_bps, 1),
                    band_bps=self.band_bps,
                )
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class MaxOpenOrders:
    """At most `limit` approved orders not yet filled or closed."""

    limit: int

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        if context.open_orders < self.limit:
            return None
        return Rejection.of(
            RejectReason.OPEN_ORDERS_LIMIT_EXCEEDED,
            symbol=signal.symbol,
            open_orders=context.open_orders,
            limit=self.limit,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MaxPosition:
    """No symbol's worst-case absolute position above `limit` shares."""

    limit: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        change = context.change(signal)
        if change.worst_after <= self.limit or change.worst_after <= change.worst_before:
            return None
        before = change.before
        return Rejection.of(
            RejectReason.POSITION_LIMIT_EXCEEDED,
            symbol=signal.symbol,
            position=change.worst_after,
            limit=self.limit,
            filled=before.position,
            pending=before.pending_buy if signal.side is Side.BUY else before.pending_sell,
            order=f"{signal.side} {signal.quantity}",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MaxNotional:
    """Gross worst-case exposure over all symbols, at current prices, at most `limit`."""

    limit: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        quotes = context.quotes
        price = order_price(quotes.get(signal.symbol), signal.side)
        if price is None:
            return Rejection.of(RejectReason.NO_PRICE, symbol=signal.symbol)
        change = context.change(signal)
        if context.others_notional is not None:
            others, missing = context.others_notional(signal.symbol)
        else:
            others, missing = _others_notional(signal.symbol, context)
        if missing is not None:
            return Rejection.of(RejectReason.NO_PRICE, symbol=missing, needed_for="notional")
        notional_before = others + change.worst_before * price
        notional_after = others + change.worst_after * price
        if notional_after <= self.limit or notional_after <= notional_before:
            return None
        return Rejection.of(
            RejectReason.NOTIONAL_LIMIT_EXCEEDED,
            symbol=signal.symbol,
            notional=notional_after,
            limit=self.limit,
            price=price,
            order=f"{signal.side} {signal.quantity}",
        )


def _others_notional(symbol: str, context: Context) -> tuple[Decimal, str | None]:
    others = ZERO
    for other, exposure in context.exposures.items():
        if other == symbol or exposure.worst == 0:
            continue
        quote = context.quotes.get(other)
        if quote is None:
            return others, other
        others += exposure.worst * quote.mid
    return others, None


@dataclasses.dataclass(frozen=True, slots=True)
class MaxConcentration:
    """One symbol's worst-case exposure at most `pct` percent of equity."""

    pct: Decimal

    def check(self, signal: Signal, context: Context) -> Rejection | None:
        price = order_price(context.quotes.get(signal.symbol), signal.side)
        if price is None:
            return Rejection.of(RejectReason.NO_PRICE, symbol=signal.symbol)
        change = context.change(signal)
        if change.worst_after <= change.worst_before:
            return None
        value = change.worst_after * price
        if context.equity > 0 and value * HUNDRED <= self.pct * context.equity:
            return None
        share = "n/a" if context.equity <= 0 else round(value * HUNDRED / context.equity, 2)
        return Rejection.of(
            RejectReason.CONCENTRATION_LIMIT_EXCEEDED,
            symbol=signal.symbol,
            exposure=value,
            equity=context.equity,
            pct=share,
            limit_pct=self.pct,
        )


def from_config(config: RiskLimits, symbols: frozenset[str]) -> list[Limit]:
    """Every limit of `config`, cheapest first (the first rejection wins)."""
    allowed = frozenset(config.allowed_symbols) if config.allowed_symbols is not None else symbols
    return [
        AllowList(allowed),
        MaxOrderQuantity(config.max_order_quantity),
        MaxOpenOrders(config.max_open_orders),
        PriceCollar(config.price_collar_bps),
        MaxOrderValue(config.max_order_value),
        MaxPosition(config.max_position),
        MaxNotional(config.max_notional),
        MaxConcentration(config.max_concentration_pct),
    ]
