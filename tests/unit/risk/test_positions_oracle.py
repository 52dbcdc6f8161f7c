"""The position book against an exact model of average-cost accounting in `fractions.Fraction`,
written apart from the book (the model closes at `quantity * (price - average)`, the book removes
a share of the cost): over 200 generated sequences of 500 fills (100,000 fills), with flips
through zero and quantities and prices from 1e-12 to the documented bounds, quantity, cash,
cost, realized P&L and equity are equal exactly after every fill, and the average price and
realized P&L as shown within half a unit of their 40th significant digit."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.core import money
from components.core.events import Fill, Side
from components.risk.positions import SHOWN_DIGITS, PositionBook

SYMBOLS = ("AAPL", "BTCUSD")
FILLS_PER_SEQUENCE = 500


@dataclasses.dataclass
class Model:
    quantity: Fraction = Fraction(0)
    cost: Fraction = Fraction(0)
    realized: Fraction = Fraction(0)

    def fill(self, signed: Fraction, price: Fraction, fee: Fraction) -> None:
        self.realized -= fee
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            self.quantity += signed
            self.cost += signed * price
            return
        average = self.cost / self.quantity
        if abs(signed) <= abs(self.quantity):
            self.realized += -signed * (price - average)
            self.quantity += signed
            self.cost = average * self.quantity
        else:
            self.realized += self.quantity * (price - average)
            self.quantity += signed
            self.cost = self.quantity * price


def number(rng: random.Random, low_exponent: int, high_exponent: int) -> Decimal:
    """A positive decimal of 1 to 12 significant digits, of magnitude 10^low to 10^high, with
    at most 12 decimal places."""
    digits = rng.randint(1, 12)
    mantissa = rng.randint(10 ** (digits - 1), 10**digits - 1)
    low = max(low_exponent - digits + 1, -money.MAX_DECIMALS)
    exponent = rng.randint(low, max(low, high_exponent - digits + 1))
    return Decimal(f"{mantissa}e{exponent}")


SCALES = {  # (quantity exponents, price exponents)
    "ordinary": ((0, 3), (0, 3)),
    "tiny": ((-12, -6), (-6, 2)),
    "huge": ((9, 15), (6, 12)),
    "mixed": ((-12, 15), (-12, 12)),
}


def within_bounds(value: Decimal, maximum: Decimal) -> Decimal:
    return value if money.out_of_bounds("v", value, maximum) is None else maximum


def close_enough(shown: Decimal, exact: Fraction) -> bool:
    if exact == 0:
        return shown == 0
    unit = Fraction(abs(Decimal(exact.numerator) / exact.denominator).scaleb(-SHOWN_DIGITS + 1))
    return abs(Fraction(shown) - exact) <= unit


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(sorted(SCALES)))
def test_book_when_any_fills_then_equal_to_the_exact_model(seed: int, scale: str) -> None:
    rng = random.Random(seed)
    quantity_exponents, price_exponents = SCALES[scale]
    book = PositionBook(Decimal("1e30"))
    models = {symbol: Model() for symbol in SYMBOLS}
    cash = Fraction(book.initial_cash)
    marks: dict[str, Decimal] = {}
    for i in range(FILLS_PER_SEQUENCE):
        symbol = rng.choice(SYMBOLS)
        model = models[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        if model.quantity and rng.random() < 0.2:  # close exactly, or flip through zero
            held = Decimal(model.quantity.numerator) / model.quantity.denominator
            side = Side.SELL if model.quantity > 0 else Side.BUY
            quantity = abs(held) * (2 if rng.random() < 0.5 else 1)
        else:
            quantity = number(rng, *quantity_exponents)
        quantity = within_bounds(quantity, money.MAX_QUANTITY)
        price = within_bounds(number(rng, *price_exponents), money.MAX_PRICE)
        fee = Decimal(rng.randint(0, 10**6)).scaleb(-rng.randint(0, 12))
        book.apply_fill(
            Fill(
                fill_id=f"f{i}",
                client_order_id="c",
                symbol=symbol,
                side=side,
                quantity=quantity,
                price=price,
                fee=fee,
                venue="test",
                ts_event_ns=i,
            )
        )
        signed = Fraction(side.sign * quantity)
        model.fill(signed, Fraction(price), Fraction(fee))
        cash -= signed * Fraction(price) + Fraction(fee)
        marks[symbol] = price

        holding = book.holdings[symbol]
        assert Fraction(holding.quantity) == model.quantity
        assert holding.exact_cost == model.cost
        assert holding.exact_realized_pnl == model.realized
        assert Fraction(book.cash) == cash
        if model.quantity:
            assert close_enough(holding.avg_price, model.cost / model.quantity)
        assert close_enough(holding.realized_pnl, model.realized)
    equity = cash + sum(m.quantity * Fraction(marks[s]) for s, m in models.items() if s in marks)
    assert Fraction(book.equity(marks)) == equity
