"""The SMA crossover on hand-computed series: nothing until both windows are full, a signal only
on a change of side, ties keep the side, symbols independent, O(1) windows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.core.events import Side
from components.strategy.base import Intent
from components.strategy.sma_cross import SmaCross, SmaCrossParams
from tests.factories import flat_bar


def _run(strategy: SmaCross, closes: list[str], symbol: str = "AAPL") -> list[Intent | None]:
    return [strategy.on_bar(flat_bar(close, symbol)) for close in closes]


def test_on_bar_when_fast_crosses_slow_then_sell_then_buy() -> None:
    strategy = SmaCross(SmaCrossParams(fast=2, slow=3))
    # fast/slow from bar 3: 11.5/11 (above), 11.5/11.33 (above), 10.5/11 (below: SELL),
    # 9.5/10, 9.5/9.67 (below), 10.5/10 (above: BUY), 11.5/11 (above).
    intents = _run(strategy, ["10", "11", "12", "11", "10", "9", "10", "11", "12"])
    assert intents == [
        None,
        None,
        None,
        None,
        Intent("AAPL", Side.SELL, "sma 2/3 crossed down"),
        None,
        None,
        Intent("AAPL", Side.BUY, "sma 2/3 crossed up"),
        None,
    ]


def test_on_bar_when_windows_not_full_then_nothing_even_if_prices_swing() -> None:
    strategy = SmaCross(SmaCrossParams(fast=1, slow=4))
    assert _run(strategy, ["10", "20", "5", "30"]) == [None] * 4


def test_on_bar_when_averages_touch_without_crossing_then_nothing() -> None:
    strategy = SmaCross(SmaCrossParams(fast=1, slow=2))
    # above, equal, equal, above again: a touch, not a cross; then below: a cross.
    assert _run(strategy, ["10", "11", "11", "11", "12", "11"]) == [
        None,
        None,
        None,
        None,
        None,
        Intent("AAPL", Side.SELL, "sma 1/2 crossed down"),
    ]


def test_on_bar_when_first_full_window_is_a_tie_then_first_side_is_not_a_cross() -> None:
    strategy = SmaCross(SmaCrossParams(fast=1, slow=2))
    assert _run(strategy, ["10", "10", "10", "11", "10"]) == [
        None,
        None,
        None,
        None,
        Intent("AAPL", Side.SELL, "sma 1/2 crossed down"),
    ]


def test_on_bar_when_symbols_interleave_then_each_has_own_windows() -> None:
    strategy = SmaCross(SmaCrossParams(fast=1, slow=2))
    got = []
    for aapl, msft in [("10", "50"), ("11", "49"), ("10", "48"), ("11", "49")]:
        got.append(strategy.on_bar(flat_bar(aapl, "AAPL")))
        got.append(strategy.on_bar(flat_bar(msft, "MSFT")))
    assert [(i.symbol, i.side) for i in got if i is not None] == [
        ("AAPL", Side.SELL),
        ("AAPL", Side.BUY),
        ("MSFT", Side.BUY),
    ]


def test_on_bar_when_many_bars_then_windows_stay_bounded_and_sums_exact() -> None:
    strategy = SmaCross(SmaCrossParams(fast=3, slow=5))
    closes = [f"{100 + (i % 7) * 0.01:.2f}" for i in range(1_000)]
    _run(strategy, closes)
    averages = strategy._symbols["AAPL"]
    assert list(averages.closes) == [Decimal(c) for c in closes[-5:]]
    assert averages.fast_sum == sum(Decimal(c) for c in closes[-3:])
    assert averages.slow_sum == sum(Decimal(c) for c in closes[-5:])


@pytest.mark.parametrize(("fast", "slow"), [(1, 2), (3, 8), (20, 50)])
def test_params_when_slow_above_fast_then_valid(fast: int, slow: int) -> None:
    assert SmaCrossParams(fast=fast, slow=slow).slow == slow
