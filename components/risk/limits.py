"""Pre-trade limits: each limit's `check` returns a `Rejection` or `None`.

Exposure is the worst case: a symbol's position plus every approved-but-unfilled order on the same
side (pending orders may all fill, the opposite ones may not). An order that does not increase the
worst-case exposure is never rejected by a limit, so that a position above a (lowered) limit can
always be reduced. Prices come from the last quote: ask for a buy, bid for a sell; other symbols'
exposure is valued at their mid. No price, no approval (on doubt, reject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from components.core.events import Quote, Side, Signal

ZERO = Decimal(0)


class RejectReason(StrEnum):
    """Stable codes: the first word of a rejection and the `reason` label of its metric."""

    POSITION_LIMIT_EXCEEDED = "POSITION_LIMIT_EXCEEDED"
    NOTIONAL_LIMIT_EXCEEDED = "NOTIONAL_LIMIT_EXCEEDED"
    NO_PRICE = "NO_PRICE"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    HALTED = "HALTED"
    INVALID_SIGNAL = "INVALID_SIGNAL"
    INVALID_REQUEST = "INVALID_REQUEST"
    STATE_LOG_FAILED = "STATE_LOG_FAILED"


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True)
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
            return dataclasses.replace(self, pending_buy=self.pending_buy + quantity)
        return dataclasses.replace(self, pending_sell=self.pending_sell + quantity)


def order_price(quote: Quote | None, side: Side) -> Decimal | None:
    """The price a market order would trade at: ask for a buy, bid for a sell."""
    if quote is None:
        return None
    return quote.ask_price if side is Side.BUY else quote.bid_price


class Limit(Protocol):
    def check(
        self, signal: Signal, exposures: Mapping[str, Exposure], quotes: Mapping[str, Quote]
    ) -> Rejection | None: ...


@dataclasses.dataclass(frozen=True)
class MaxPosition:
    """No symbol's worst-case absolute position above `limit` shares."""

    limit: Decimal

    def check(
        self, signal: Signal, exposures: Mapping[str, Exposure], quotes: Mapping[str, Quote]
    ) -> Rejection | None:
        before = exposures.get(signal.symbol, Exposure())
        after = before.with_order(signal.side, signal.quantity)
        if after.worst <= self.limit or after.worst <= before.worst:
            return None
        return Rejection.of(
            RejectReason.POSITION_LIMIT_EXCEEDED,
            symbol=signal.symbol,
            position=after.worst,
            limit=self.limit,
            filled=before.position,
            pending=before.pending_buy if signal.side is Side.BUY else before.pending_sell,
            order=f"{signal.side} {signal.quantity}",
        )


@dataclasses.dataclass(frozen=True)
class MaxNotional:
    """Gross worst-case exposure over all symbols, at current prices, at most `limit`."""

    limit: Decimal

    def check(
        self, signal: Signal, exposures: Mapping[str, Exposure], quotes: Mapping[str, Quote]
    ) -> Rejection | None:
        price = order_price(quotes.get(signal.symbol), signal.side)
        if price is None:
            return Rejection.of(RejectReason.NO_PRICE, symbol=signal.symbol)
        before = exposures.get(signal.symbol, Exposure())
        after = before.with_order(signal.side, signal.quantity)
        others = ZERO
        for symbol, exposure in exposures.items():
            if symbol == signal.symbol or exposure.worst == 0:
                continue
            quote = quotes.get(symbol)
            if quote is None:
                return Rejection.of(RejectReason.NO_PRICE, symbol=symbol, needed_for="notional")
            others += exposure.worst * quote.mid
        notional_before = others + before.worst * price
        notional_after = others + after.worst * price
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
