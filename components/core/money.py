"""Exact prices, sizes and money: `Decimal`, never float.

Market data arrives as text or float from feeds; it becomes a `Decimal` here, once, and is checked:
NaN, infinities, zero and negative prices are refused with `InvalidPriceError`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

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
