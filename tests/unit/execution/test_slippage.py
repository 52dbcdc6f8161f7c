"""Slippage: the pre-trade estimate is half the spread plus square-root impact on bar volatility
and volume; realized slippage is signed so that paying up is positive."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from components.core.events import Bar, Side
from components.execution import slippage
from tests.factories import quote

D = Decimal


def bar(close: str, volume: int, timeframe: str = "1s") -> Bar:
    price = D(close)
    return Bar(
        symbol="AAPL",
        timeframe=timeframe,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=D(volume),
        vwap=price,
        trade_count=1,
        ts_open_ns=0,
        ts_close_ns=1,
    )


def test_estimate_when_only_a_quote_then_half_spread_and_no_impact() -> None:
    model = slippage.SlippageModel()
    model.on_quote(quote("99.99", "100.01"))
    estimate = model.estimate("AAPL", D(100))
    assert estimate is not None
    assert estimate.arrival_mid == D(100)
    assert estimate.spread_bps == pytest.approx(1.0)
    assert estimate.impact_bps is None and estimate.total_bps == pytest.approx(1.0)


def test_estimate_when_bars_then_square_root_impact_grows_with_quantity() -> None:
    model = slippage.SlippageModel(impact_coefficient=1.0, window_bars=1)  # alpha 1: last bar
    model.on_quote(quote("99.99", "100.01"))
    model.on_bar(bar("100", 400))
    model.on_bar(bar("101", 400))
    model.on_bar(bar("99", 400, timeframe="5s"))  # another timeframe: ignored
    sigma_bps = abs(math.log(101 / 100)) * 10_000
    small = model.estimate("AAPL", D(100))
    large = model.estimate("AAPL", D(400))
    assert small is not None and large is not None
    assert small.impact_bps == pytest.approx(sigma_bps * math.sqrt(100 / 400))
    assert large.impact_bps == pytest.approx(sigma_bps)  # four times the size, twice the impact


def test_estimate_when_no_quote_then_none() -> None:
    assert slippage.SlippageModel().estimate("AAPL", D(1)) is None


def test_realized_when_buy_above_mid_then_positive_when_sell_above_mid_then_negative() -> None:
    assert slippage.realized_bps(Side.BUY, D("100.02"), D(100)) == pytest.approx(2.0)
    assert slippage.realized_bps(Side.SELL, D("100.02"), D(100)) == pytest.approx(-2.0)
