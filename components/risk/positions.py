"""The position book: what the account holds, what it paid and what it made, in exact Decimal.

Per symbol the book keeps the signed quantity, the signed cost basis (what the open quantity cost,
so that the average entry price is `cost / quantity`) and the realized P&L net of fees. Keeping the
cost rather than the average price keeps the accounting identity exact:

    equity - initial_cash == realized_pnl + unrealized_pnl

A fill that increases a position adds to its cost; one that reduces it realizes
`closed * (price - average)` and removes the matching share of the cost; one that goes through
zero closes the whole position at the fill's price and opens the remainder at the same price.
Fees reduce cash and the realized P&L of the symbol they were paid on.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from components.core.events import Fill, Position

ZERO = Decimal(0)
# The share of the cost removed by a partial close is a division; rounding it to a fixed quantum
# keeps every later sum within Decimal's precision, hence exact (prices have at most 10 decimals).
COST_QUANTUM = Decimal("1e-10")


def validate_fill(fill: Fill) -> None:
    """A fill the book can take: quantity and price > 0, fee >= 0; else `ValueError`."""
    quantity, price, fee = fill.quantity, fill.price, fill.fee
    if not (
        quantity.is_finite()
        and price.is_finite()
        and fee.is_finite()
        and quantity > 0
        and price > 0
        and fee >= 0
    ):
        raise ValueError(
            f"fill {fill.fill_id}: quantity and price must be > 0 and fee >= 0 "
            f"(was quantity={fill.quantity}, price={fill.price}, fee={fill.fee})"
        )


@dataclasses.dataclass
class Holding:
    """One symbol's position. `cost` is signed like `quantity` (a short has a negative cost)."""

    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO  # net of fees
    fees: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else ZERO

    def unrealized_pnl(self, mark: Decimal | None) -> Decimal:
        """Gain of the open quantity at `mark`; none without a mark (valued at cost)."""
        return ZERO if mark is None else self.quantity * mark - self.cost


class PositionBook:
    """Positions, cash and marks of one account. Marks are mid prices, kept for valuation only."""

    def __init__(self, initial_cash: Decimal) -> None:
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.holdings: dict[str, Holding] = {}
        self.marks: dict[str, Decimal] = {}
        self.fill_count = 0

    def apply_fill(self, fill: Fill) -> None:
        """Book one fill; `validate_fill` first."""
        validate_fill(fill)
        holding = self.holdings.setdefault(fill.symbol, Holding())
        signed = fill.side.sign * fill.quantity
        self.cash -= signed * fill.price + fill.fee
        holding.fees += fill.fee
        holding.realized_pnl -= fill.fee

        if holding.quantity == 0 or (holding.quantity > 0) == (signed > 0):
            holding.quantity += signed  # opening or increasing: the cost grows by what was paid
            holding.cost += signed * fill.price
        elif abs(signed) <= abs(holding.quantity):
            closed = -signed  # reducing (or closing exactly): same sign as the holding
            if closed == holding.quantity:
                removed = holding.cost
            else:
                removed = (holding.cost * closed / holding.quantity).quantize(
                    COST_QUANTUM, ROUND_HALF_EVEN
                )
            holding.realized_pnl += closed * fill.price - removed
            holding.cost -= removed
            holding.quantity += signed
        else:
            # Through zero: close everything at the fill's price, open the rest at it.
            holding.realized_pnl += holding.quantity * fill.price - holding.cost
            holding.quantity += signed
            holding.cost = holding.quantity * fill.price
        self.fill_count += 1

    def mark(self, symbol: str, price: Decimal) -> None:
        self.marks[symbol] = price

    def quantity(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol)
        return holding.quantity if holding else ZERO

    @property
    def realized_pnl(self) -> Decimal:
        return sum((h.realized_pnl for h in self.holdings.values()), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((h.fees for h in self.holdings.values()), ZERO)

    @property
    def gross_realized_pnl(self) -> Decimal:
        """Realized P&L before fees: `gross_realized_pnl - fees == realized_pnl`."""
        return self.realized_pnl + self.fees

    def unrealized_pnl(
        self, symbol: str | None = None, marks: Mapping[str, Decimal] | None = None
    ) -> Decimal:
        """Unrealized P&L of `symbol`, or of every symbol; at `marks` (default: the book's)."""
        marks = self.marks if marks is None else marks
        if symbol is not None:
            holding = self.holdings.get(symbol)
            return holding.unrealized_pnl(marks.get(symbol)) if holding else ZERO
        return sum((h.unrealized_pnl(marks.get(s)) for s, h in self.holdings.items()), ZERO)

    def equity(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus every position at its mark (a symbol without a mark counts at its cost)."""
        marks = self.marks if marks is None else marks
        value = ZERO
        for symbol, holding in self.holdings.items():
            mark = marks.get(symbol)
            value += holding.cost if mark is None else holding.quantity * mark
        return self.cash + value

    def position(self, symbol: str, ts_event_ns: int | None = None) -> Position:
        holding = self.holdings.get(symbol, Holding())
        return Position(
            symbol=symbol,
            quantity=holding.quantity,
            avg_price=holding.avg_price,
            realized_pnl=holding.realized_pnl,
            ts_event_ns=time.time_ns() if ts_event_ns is None else ts_event_ns,
        )

    def snapshot(self, ts_event_ns: int | None = None) -> list[Position]:
        """A `Position` per symbol ever traded, sorted by symbol."""
        now = time.time_ns() if ts_event_ns is None else ts_event_ns
        return [self.position(symbol, now) for symbol in sorted(self.holdings)]
