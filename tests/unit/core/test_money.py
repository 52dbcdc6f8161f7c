"""Exact prices: conversions refuse NaN, infinities and non-positive prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.core.errors import InvalidPriceError
from components.core.money import round_money, round_to_tick, to_decimal, to_price, to_size


def test_to_decimal_when_float_then_shortest_repr_not_binary_noise() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(190.01) == Decimal("190.01")


@pytest.mark.parametrize("value", ["NaN", float("nan"), float("inf"), "-Infinity", "abc", None])
def test_to_price_when_not_finite_number_then_rejected(value: object) -> None:
    with pytest.raises(InvalidPriceError):
        to_price(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, "0.00", -1, "-0.01"])
def test_to_price_when_not_positive_then_rejected(value: object) -> None:
    with pytest.raises(InvalidPriceError, match="price must be > 0"):
        to_price(value)  # type: ignore[arg-type]


def test_to_size_when_zero_then_allowed_and_negative_rejected() -> None:
    assert to_size("0") == 0
    with pytest.raises(InvalidPriceError, match="size must be >= 0"):
        to_size(-3)


def test_round_to_tick_when_halfway_then_to_even() -> None:
    assert round_to_tick(Decimal("100.005"), Decimal("0.01")) == Decimal("100.00")
    assert round_to_tick(Decimal("100.015"), Decimal("0.01")) == Decimal("100.02")
    assert round_to_tick(Decimal("100.07"), Decimal("0.05")) == Decimal("100.05")


def test_round_money_when_fraction_of_cent_then_to_even() -> None:
    assert round_money(Decimal("0.125")) == Decimal("0.12")
    assert round_money(Decimal("-1.235")) == Decimal("-1.24")
