"""Limits on each side of their boundary: position and notional, with pending orders counted,
reductions always allowed, prices by side, and rejections that read `CODE: key=value, ...`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from components.core.events import OrderType, Quote, Side, Signal
from components.risk.limits import (
    AllowList,
    Context,
    Exposure,
    MaxConcentration,
    MaxNotional,
    MaxOpenOrders,
    MaxOrderQuantity,
    MaxOrderValue,
    MaxPosition,
    PriceCollar,
    Rejection,
    RejectReason,
)
from tests.factories import quote

D = Decimal


def signal(side: Side, quantity: int, symbol: str = "AAPL") -> Signal:
    return Signal(
        signal_id="s1",
        strategy="test",
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
    )


QUOTES = {"AAPL": quote("99", "101"), "MSFT": quote("9", "11", "MSFT")}


def at(
    exposures: dict[str, Exposure] | None = None,
    quotes: dict[str, Quote] | None = None,
    **context: Any,
) -> Context:
    return Context(exposures or {}, QUOTES if quotes is None else quotes, **context)


def test_rejection_message_when_details_given_then_code_then_key_values() -> None:
    rejection = Rejection.of(RejectReason.POSITION_LIMIT_EXCEEDED, symbol="AAPL", position=120)
    assert rejection.message == "POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=120"
    assert str(Rejection.of(RejectReason.HALTED)) == "HALTED"


def test_max_position_when_order_reaches_limit_exactly_then_approves() -> None:
    exposures = {"AAPL": Exposure(position=D(90))}
    assert MaxPosition(D(100)).check(signal(Side.BUY, 10), at(exposures)) is None


def test_max_position_when_order_passes_limit_then_rejects_with_the_numbers() -> None:
    exposures = {"AAPL": Exposure(position=D(90))}
    rejection = MaxPosition(D(100)).check(signal(Side.BUY, 11), at(exposures))
    assert rejection is not None
    assert rejection.message == (
        "POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=101, limit=100, filled=90, pending=0, "
        "order=buy 11"
    )


def test_max_position_when_pending_same_side_orders_then_they_count() -> None:
    exposures = {"AAPL": Exposure(position=D(50), pending_buy=D(40))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.BUY, 10), at(exposures)) is None
    assert limit.check(signal(Side.BUY, 11), at(exposures)) is not None


def test_max_position_when_short_side_passes_limit_then_rejects() -> None:
    exposures = {"AAPL": Exposure(position=D(-50), pending_sell=D(30))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.SELL, 20), at(exposures)) is None
    assert limit.check(signal(Side.SELL, 21), at(exposures)) is not None


def test_max_position_when_pending_opposite_orders_then_they_do_not_offset() -> None:
    exposures = {"AAPL": Exposure(position=D(95), pending_sell=D(50))}
    assert MaxPosition(D(100)).check(signal(Side.BUY, 6), at(exposures)) is not None


def test_max_position_when_already_above_limit_then_reducing_order_approved() -> None:
    exposures = {"AAPL": Exposure(position=D(120))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.SELL, 10), at(exposures)) is None
    assert limit.check(signal(Side.BUY, 1), at(exposures)) is not None


def test_max_notional_when_buy_reaches_limit_at_ask_then_approves() -> None:
    exposures = {"MSFT": Exposure(position=D(100))}  # 100 x mid 10 = 1000
    limit = MaxNotional(D(2010))
    assert limit.check(signal(Side.BUY, 10), at(exposures)) is None  # + 10 x ask 101


def test_max_notional_when_buy_passes_limit_at_ask_then_rejects_with_the_numbers() -> None:
    exposures = {"MSFT": Exposure(position=D(100))}
    rejection = MaxNotional(D(2009)).check(signal(Side.BUY, 10), at(exposures))
    assert rejection is not None
    assert rejection.message == (
        "NOTIONAL_LIMIT_EXCEEDED: symbol=AAPL, notional=2010, limit=2009, price=101, order=buy 10"
    )


def test_max_notional_when_sell_then_priced_at_bid() -> None:
    assert MaxNotional(D(990)).check(signal(Side.SELL, 10), at()) is None
    assert MaxNotional(D(989)).check(signal(Side.SELL, 10), at()) is not None


def test_max_notional_when_no_quote_for_symbol_then_rejects_no_price() -> None:
    rejection = MaxNotional(D(10**9)).check(signal(Side.BUY, 1, "IBM"), at())
    assert rejection is not None and rejection.message == "NO_PRICE: symbol=IBM"


def test_max_notional_when_other_exposure_has_no_quote_then_rejects_no_price() -> None:
    exposures = {"IBM": Exposure(position=D(5))}
    rejection = MaxNotional(D(10**9)).check(signal(Side.BUY, 1), at(exposures))
    assert rejection is not None and rejection.reason is RejectReason.NO_PRICE


def test_max_notional_when_order_reduces_exposure_then_approved_above_limit() -> None:
    exposures = {"AAPL": Exposure(position=D(100))}
    assert MaxNotional(D(1000)).check(signal(Side.SELL, 10), at(exposures)) is None


def limit_signal(side: Side, quantity: int, price: str) -> Signal:
    return Signal(
        signal_id="s1",
        strategy="test",
        symbol="AAPL",
        side=side,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
        order_type=OrderType.LIMIT,
        limit_price=D(price),
    )


def test_allow_list_when_symbol_listed_then_passes_else_rejects() -> None:
    limit = AllowList(frozenset({"AAPL"}))
    assert limit.check(signal(Side.BUY, 1), at()) is None
    rejection = limit.check(signal(Side.BUY, 1, "MSFT"), at())
    assert rejection is not None and rejection.message == "SYMBOL_NOT_ALLOWED: symbol=MSFT"


def test_max_order_quantity_when_at_limit_then_passes_above_rejects_even_reducing() -> None:
    limit = MaxOrderQuantity(D(50))
    exposures = {"AAPL": Exposure(position=D(500))}
    assert limit.check(signal(Side.BUY, 50), at(exposures)) is None
    rejection = limit.check(signal(Side.SELL, 51), at(exposures))
    assert rejection is not None
    assert rejection.message == "ORDER_QUANTITY_EXCEEDED: symbol=AAPL, quantity=51, limit=50"


def test_max_order_value_when_market_then_priced_at_ask_and_limit_at_its_price() -> None:
    limit = MaxOrderValue(D(1010))
    assert limit.check(signal(Side.BUY, 10), at()) is None  # 10 x ask 101
    assert limit.check(signal(Side.BUY, 11), at()) is not None
    assert limit.check(limit_signal(Side.BUY, 11, "91.80"), at()) is None  # 1009.80
    rejection = limit.check(limit_signal(Side.BUY, 11, "91.90"), at())
    assert rejection is not None and rejection.message.startswith(
        "ORDER_VALUE_EXCEEDED: symbol=AAPL, value=1010.90, limit=1010"
    )


def test_price_collar_when_limit_price_within_band_of_last_trade_then_passes() -> None:
    collar = PriceCollar(D(100))  # 1 %
    context = at(last_trades={"AAPL": D(200)})
    assert collar.check(limit_signal(Side.BUY, 1, "202"), context) is None
    assert collar.check(limit_signal(Side.SELL, 1, "198"), context) is None
    rejection = collar.check(limit_signal(Side.BUY, 1, "202.02"), context)
    assert rejection is not None
    assert rejection.message == (
        "PRICE_OUTSIDE_COLLAR: symbol=AAPL, limit_price=202.02, reference=200, "
        "distance_bps=101.0, band_bps=100"
    )


def test_price_collar_when_no_trade_then_reference_is_mid_and_market_orders_pass() -> None:
    collar = PriceCollar(D(100))
    assert collar.check(limit_signal(Side.BUY, 1, "101"), at()) is None  # mid 100
    assert collar.check(limit_signal(Side.BUY, 1, "101.01"), at()) is not None
    assert collar.check(signal(Side.BUY, 1), at(quotes={})) is None


def stop_signal(side: Side, quantity: int, stop: str, limit: str | None = None) -> Signal:
    return msgspec.structs.replace(
        signal(side, quantity),
        order_type=OrderType.STOP if limit is None else OrderType.STOP_LIMIT,
        stop_price=D(stop),
        limit_price=None if limit is None else D(limit),
    )


def test_price_collar_when_stop_price_outside_band_then_rejects_naming_it() -> None:
    collar = PriceCollar(D(100))  # 1 % of mid 100
    assert collar.check(stop_signal(Side.BUY, 1, "101"), at()) is None
    assert collar.check(stop_signal(Side.SELL, 1, "99", limit="99"), at()) is None
    rejection = collar.check(stop_signal(Side.SELL, 1, "98.99"), at())
    assert rejection is not None
    assert rejection.message == (
        "PRICE_OUTSIDE_COLLAR: symbol=AAPL, stop_price=98.99, reference=100, "
        "distance_bps=101.0, band_bps=100"
    )
    # A stop-limit's stop within the band does not let its limit out of it.
    rejection = collar.check(stop_signal(Side.BUY, 1, "100.50", limit="101.50"), at())
    assert rejection is not None and "limit_price=101.50" in rejection.message


def test_max_order_value_when_stop_then_valued_at_its_stop_or_the_market_if_worse() -> None:
    limit = MaxOrderValue(D(1010))
    assert limit.check(stop_signal(Side.BUY, 10, "101"), at()) is None  # 10 x 101
    rejection = limit.check(stop_signal(Side.BUY, 10, "101.01"), at())  # above the ask
    assert rejection is not None and "price=101.01" in rejection.message
    assert limit.check(stop_signal(Side.SELL, 10, "98"), at()) is None  # at the bid, 99
    assert limit.check(stop_signal(Side.BUY, 10, "105", limit="100"), at()) is None  # its limit


def test_max_open_orders_when_count_reaches_limit_then_rejects() -> None:
    limit = MaxOpenOrders(3)
    assert limit.check(signal(Side.BUY, 1), at(open_orders=2)) is None
    rejection = limit.check(signal(Side.BUY, 1), at(open_orders=3))
    assert rejection is not None
    assert rejection.message == "OPEN_ORDERS_LIMIT_EXCEEDED: symbol=AAPL, open_orders=3, limit=3"


def test_max_concentration_when_exposure_share_of_equity_passes_limit_then_rejects() -> None:
    limit = MaxConcentration(D(10))  # 10 % of 10 100 = 1010 = 10 x ask 101
    exposures = {"AAPL": Exposure(position=D(5), pending_buy=D(3))}
    assert limit.check(signal(Side.BUY, 2), at(exposures, equity=D(10_100))) is None
    rejection = limit.check(signal(Side.BUY, 3), at(exposures, equity=D(10_100)))
    assert rejection is not None and rejection.reason is RejectReason.CONCENTRATION_LIMIT_EXCEEDED
    assert "exposure=1111, equity=10100, pct=11.00, limit_pct=10" in rejection.message


def test_max_concentration_when_reducing_or_no_equity_then_reduce_passes_increase_fails() -> None:
    limit = MaxConcentration(D(10))
    exposures = {"AAPL": Exposure(position=D(50))}
    assert limit.check(signal(Side.SELL, 10), at(exposures, equity=D(100))) is None
    assert limit.check(signal(Side.BUY, 1), at({}, equity=D(0))) is not None
