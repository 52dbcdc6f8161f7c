"""Exact prices, sizes and money: `Decimal`, never float.

Market data arrives as text or float from feeds; it becomes a `Decimal` here, once, and is checked:
NaN, infinities, zero and negative prices are refused with `InvalidPriceError`.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from components.core.errors import InvalidPriceError

ZERO = Decimal(0)
CENT = Decimal("0.01")


def to_decimal(value: Decimal | int | float | str) -> Decimal:
    """Convert without binary noise: a float goes through its shortest repr (0.1 → 0.1 exactly)."""
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidPriceError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise InvalidPriceError(f"not a finite number: {value!r}")
    return number


def to_price(value: Decimal | int | float | str) -> Decimal:
    """A price: finite and strictly positive."""
    price = to_decimal(value)
    if price <= ZERO:
        raise InvalidPriceError(f"price must be > 0 (was {value!r})")
    return price


def to_size(value: Decimal | int | float | str) -> Decimal:
    """A size or quantity: finite and not negative (a zero size deletes a book level)."""
    size = to_decimal(value)
    if size < ZERO:
        raise InvalidPriceError(f"size must be >= 0 (was {value!r})")
    return size


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Round to the nearest multiple of `tick`, ties to even, as exchanges quote."""
    return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick


def round_money(amount: Decimal) -> Decimal:
    """Round an amount of money to the cent, ties to even."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


# --- the bounds of exact accounting ---------------------------------------------------------
# The position book is exact for quantities, prices and fees inside these bounds, and refuses
# what lies outside (`risk.positions`): at most 12 decimal places (a satoshi is 1e-8, a wei-sized
# fraction is not traded), a quantity up to 1e15 and a price up to 1e12, so a notional has at
# most 27 integer and 24 decimal digits. `MONEY_CONTEXT` holds every sum of such amounts exactly
# and raises rather than round (`Inexact` is trapped).
MAX_QUANTITY = Decimal("1e15")
MAX_PRICE = Decimal("1e12")
MAX_FEE = Decimal("1e15")
MAX_DECIMALS = 12
MONEY_CONTEXT = Context(
    prec=80,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)


def out_of_bounds(name: str, value: Decimal, maximum: Decimal) -> str | None:
    """Why a finite `value` (a quantity, price or fee) lies outside the bounds of exact
    accounting, or None. Trailing zeros are not decimal places (`1.50000000000000` is fine)."""
    if abs(value) > maximum:
        return f"{name} {value} is above the maximum {maximum}"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    places = -exponent
    for digit in reversed(digits):
        if places <= MAX_DECIMALS or digit != 0:
            break
        places -= 1
    if places > MAX_DECIMALS:
        return f"{name} {value} has more than {MAX_DECIMALS} decimal places"
    return None
