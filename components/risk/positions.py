"""The position book: what the account holds, what it paid and what it made, exactly.

Per symbol the book keeps the signed quantity, the signed cost basis (what the open quantity cost,
so that the average entry price is `cost / quantity`) and the realized P&L net of fees. Keeping the
cost rather than the average price keeps the accounting identity exact:

    equity - initial_cash == realized_pnl + unrealized_pnl

A fill that increases a position adds to its cost; one that reduces it realizes
`closed * (price - average)` and removes the matching share of the cost; one that goes through
zero closes the whole position at the fill's price and opens the remainder at the same price.
Fees reduce cash and the realized P&L of the symbol they were paid on.

Cash, quantities and fees are Decimals, computed in `money.MONEY_CONTEXT`, which raises rather
than rounds. The share of the cost a partial close removes is a ratio (a third of 10 is not a
decimal), so cost and realized P&L are kept as exact fractions: nothing is rounded, and nothing
drifts however many partial closes a position has. They are shown as Decimals (`shown`): exactly
when the fraction is a decimal, otherwise to `SHOWN_DIGITS` significant digits, within half a
unit of the last.

A fill's whole effect is computed before anything changes (`effect_of`): a fill the book cannot
take (malformed, outside the bounds in `core.money`) is a `FillRejected`, and the book is as it
was. That lets the risk manager log a fill only once it knows it applies.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction

from components.core import money
from components.core.errors import FillRejected
from components.core.events import Fill, Position

ZERO = Decimal(0)
NOTHING = Fraction(0)
SHOWN_DIGITS = 40
_SHOWN = Context(prec=SHOWN_DIGITS, rounding=ROUND_HALF_EVEN)
# Equity at marks in Decimal: exact or an exception (then the fractions decide). Wide enough for
# any mark a feed sends; it is only a shortcut, so no width is wrong.
_EXACT = Context(
    prec=120, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
_ONE = Decimal(1)
_add, _multiply, _normalize = _EXACT.add, _EXACT.multiply, _EXACT.normalize
_to_integral, _quantize = _EXACT.to_integral_value, _EXACT.quantize


def shown(value: Fraction) -> Decimal:
    """`value` as a Decimal: exact when it is a decimal (its denominator divides a power of
    ten: cash, equity, anything without a partial close), else to `SHOWN_DIGITS` digits."""
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest == 1:
        places = max(twos, fives)
        return Decimal(f"{value.numerator * 10**places // value.denominator}e-{places}")
    return _SHOWN.divide(Decimal(value.numerator), Decimal(value.denominator))


def validate_fill(fill: Fill) -> None:
    """A fill the book can take: Decimal quantity and price > 0, fee >= 0, each inside the
    bounds of `core.money`; else `FillRejected`."""
    for name in ("quantity", "price", "fee"):
        value = getattr(fill, name)
        if not isinstance(value, Decimal):
            kind = type(value).__name__
            raise FillRejected(fill.fill_id, f"{name} must be a Decimal (got {value!r}, a {kind})")
    quantity, price, fee = fill.quantity, fill.price, fill.fee
    if not (
        quantity.is_finite()
        and price.is_finite()
        and fee.is_finite()
        and quantity > 0
        and price > 0
        and fee >= 0
    ):
        raise FillRejected(
            fill.fill_id,
            "quantity and price must be > 0 and fee >= 0 "
            f"(was quantity={fill.quantity}, price={fill.price}, fee={fill.fee})",
        )
    for problem in (
        money.out_of_bounds("quantity", quantity, money.MAX_QUANTITY),
        money.out_of_bounds("price", price, money.MAX_PRICE),
        money.out_of_bounds("fee", fee, money.MAX_FEE),
    ):
        if problem is not None:
            raise FillRejected(fill.fill_id, problem)


def _fraction(value: Decimal) -> Fraction:
    """`Fraction(value)`, without its checks for every kind of number (a finite Decimal here)."""
    return Fraction(*value.as_integer_ratio()) if value else NOTHING


def _times(quantity: Decimal, price: Decimal) -> Fraction:
    """The exact product: a mark need not lie inside the bounds of a fill."""
    return Fraction(quantity) * Fraction(price)


@dataclasses.dataclass
class Holding:
    """One symbol's position. `cost` is signed like `quantity` (a short has a negative cost);
    cost and realized P&L are exact fractions, shown through the properties."""

    quantity: Decimal = ZERO
    exact_cost: Fraction = NOTHING
    exact_realized_pnl: Fraction = NOTHING  # net of fees
    fees: Decimal = ZERO

    @property
    def cost(self) -> Decimal:
        return shown(self.exact_cost)

    @property
    def realized_pnl(self) -> Decimal:
        return shown(self.exact_realized_pnl)

    @property
    def avg_price(self) -> Decimal:
        return shown(self.exact_cost / Fraction(self.quantity)) if self.quantity else ZERO

    def unrealized_pnl(self, mark: Decimal | None) -> Decimal:
        """Gain of the open quantity at `mark`; none without a mark (valued at cost)."""
        return ZERO if mark is None else shown(self.exact_unrealized_pnl(mark))

    def exact_unrealized_pnl(self, mark: Decimal | None) -> Fraction:
        return NOTHING if mark is None else _times(self.quantity, mark) - self.exact_cost


@dataclasses.dataclass(frozen=True)
class Effect:
    """What one fill does to the book, computed before anything changes."""

    symbol: str
    holding: Holding
    cash: Decimal


class PositionBook:
    """Positions, cash and marks of one account. Marks are mid prices, kept for valuation only."""

    def __init__(self, initial_cash: Decimal) -> None:
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.holdings: dict[str, Holding] = {}
        self.marks: dict[str, Decimal] = {}
        self.fill_count = 0

    def effect_of(self, fill: Fill) -> Effect:
        """The whole effect of `fill`, changing nothing; `FillRejected` if it cannot be booked."""
        validate_fill(fill)
        held = self.holdings.get(fill.symbol) or Holding()
        before = held.quantity
        # The context's own methods rather than `localcontext`: the same exact arithmetic (Inexact
        # trapped) without switching the thread's context twice per fill.
        exact = money.MONEY_CONTEXT
        mul, add, sub = exact.multiply, exact.add, exact.subtract
        price, fee = fill.price, fill.fee
        try:
            signed = fill.quantity if fill.side.sign > 0 else exact.minus(fill.quantity)
            paid = mul(signed, price)
            cash = sub(self.cash, add(paid, fee))
            quantity = add(before, signed)
            fees = add(held.fees, fee)
            if before == 0 or (before > 0) == (signed > 0):
                realized_now, cost_paid = exact.minus(fee), paid
            elif quantity == 0 or abs(signed) < abs(before):  # closing or reducing
                realized_now, cost_paid = sub(exact.minus(paid), fee), ZERO
            else:
                realized_now, cost_paid = sub(mul(before, price), fee), mul(quantity, price)
        except DecimalException as exc:  # the bounds keep this from happening; on doubt, refuse
            raise FillRejected(fill.fill_id, f"cash would not be exact ({exc!r})") from exc
        # What the fill adds is a decimal, exact in Decimal; fractions only meet the book's own
        # (a fraction after a partial close), each converted once: a fraction operation costs
        # some 30 Decimal ones, and a backtest books a fill every few bars.
        realized = held.exact_realized_pnl
        if realized_now:
            realized += _fraction(realized_now)
        if before == 0 or (before > 0) == (signed > 0):
            cost = held.exact_cost + _fraction(cost_paid)  # opening or increasing: cost grows
        elif quantity == 0:
            realized -= held.exact_cost  # closing exactly: all the cost goes
            cost = NOTHING
        elif abs(signed) < abs(before):
            # Reducing: the closed share of the cost goes, the average stays.
            removed = held.exact_cost * Fraction(-signed) / Fraction(before)
            realized -= removed
            cost = held.exact_cost - removed
        else:
            # Through zero: close everything at the fill's price, open the rest at it.
            realized -= held.exact_cost
            cost = _fraction(cost_paid)
        return Effect(fill.symbol, Holding(quantity, cost, realized, fees), cash)

    def apply_fill(self, fill: Fill) -> None:
        """Book one fill, all of it or (`FillRejected`) none of it."""
        effect = self.effect_of(fill)
        self.holdings[effect.symbol] = effect.holding
        self.cash = effect.cash
        self.fill_count += 1

    def mark(self, symbol: str, price: Decimal) -> None:
        self.marks[symbol] = price

    def quantity(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol)
        return holding.quantity if holding else ZERO

    @property
    def realized_pnl(self) -> Decimal:
        return shown(sum((h.exact_realized_pnl for h in self.holdings.values()), NOTHING))

    @property
    def fees(self) -> Decimal:
        with localcontext(money.MONEY_CONTEXT):
            return sum((h.fees for h in self.holdings.values()), ZERO)

    @property
    def gross_realized_pnl(self) -> Decimal:
        """Realized P&L before fees: `gross_realized_pnl - fees == realized_pnl`."""
        exact = sum((h.exact_realized_pnl for h in self.holdings.values()), NOTHING)
        return shown(exact + Fraction(self.fees))

    def unrealized_pnl(
        self, symbol: str | None = None, marks: Mapping[str, Decimal] | None = None
    ) -> Decimal:
        """Unrealized P&L of `symbol`, or of every symbol; at `marks` (default: the book's)."""
        marks = self.marks if marks is None else marks
        if symbol is not None:
            holding = self.holdings.get(symbol)
            return holding.unrealized_pnl(marks.get(symbol)) if holding else ZERO
        return shown(
            sum((h.exact_unrealized_pnl(marks.get(s)) for s, h in self.holdings.items()), NOTHING)
        )

    def equity(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus every position at its mark (a symbol without a mark counts at its cost)."""
        marks = self.marks if marks is None else marks
        # A backtest values the book at every bar: with every symbol marked, cash + quantity x
        # mark is a sum of Decimal products, exact in `_EXACT` (else it raises), in C and some
        # 20 times faster than through fractions; spelled as `shown` spells the same value.
        total = self.cash
        try:
            for symbol, holding in self.holdings.items():
                total = _add(total, _multiply(holding.quantity, marks[symbol]))
            total = _normalize(total)
            if _to_integral(total) == total:  # 5E+2 is spelled 500, and -0 is 0
                return _quantize(total, _ONE) if total else ZERO
            return total
        except (KeyError, TypeError, DecimalException):
            pass  # a symbol at its cost (a fraction), or a mark too wide: the exact way
        value = Fraction(self.cash)
        for symbol, holding in self.holdings.items():
            mark = marks.get(symbol)
            value += holding.exact_cost if mark is None else _times(holding.quantity, mark)
        return shown(value)

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
