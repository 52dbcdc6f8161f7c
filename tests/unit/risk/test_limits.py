"""Limits on each side of their boundary: position and notional, with pending orders counted,
reductions always allowed, prices by side, and rejections that read `CODE: key=value, ...`."""

from __future__ import annotations

from decimal import Decimal

from components.core.events import Side, Signal
from components.risk.limits import Exposure, MaxNotional, MaxPosition, Rejection, RejectReason
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


def test_rejection_message_when_details_given_then_code_then_key_values() -> None:
    rejection = Rejection.of(RejectReason.POSITION_LIMIT_EXCEEDED, symbol="AAPL", position=120)
    assert rejection.message == "POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=120"
    assert str(Rejection.of(RejectReason.HALTED)) == "HALTED"


def test_max_position_when_order_reaches_limit_exactly_then_approves() -> None:
    exposures = {"AAPL": Exposure(position=D(90))}
    assert MaxPosition(D(100)).check(signal(Side.BUY, 10), exposures, QUOTES) is None


def test_max_position_when_order_passes_limit_then_rejects_with_the_numbers() -> None:
    exposures = {"AAPL": Exposure(position=D(90))}
    rejection = MaxPosition(D(100)).check(signal(Side.BUY, 11), exposures, QUOTES)
    assert rejection is not None
    assert rejection.message == (
        "POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=101, limit=100, filled=90, pending=0, "
        "order=buy 11"
    )


def test_max_position_when_pending_same_side_orders_then_they_count() -> None:
    exposures = {"AAPL": Exposure(position=D(50), pending_buy=D(40))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.BUY, 10), exposures, QUOTES) is None
    assert limit.check(signal(Side.BUY, 11), exposures, QUOTES) is not None


def test_max_position_when_short_side_passes_limit_then_rejects() -> None:
    exposures = {"AAPL": Exposure(position=D(-50), pending_sell=D(30))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.SELL, 20), exposures, QUOTES) is None
    assert limit.check(signal(Side.SELL, 21), exposures, QUOTES) is not None


def test_max_position_when_pending_opposite_orders_then_they_do_not_offset() -> None:
    exposures = {"AAPL": Exposure(position=D(95), pending_sell=D(50))}
    assert MaxPosition(D(100)).check(signal(Side.BUY, 6), exposures, QUOTES) is not None


def test_max_position_when_already_above_limit_then_reducing_order_approved() -> None:
    exposures = {"AAPL": Exposure(position=D(120))}
    limit = MaxPosition(D(100))
    assert limit.check(signal(Side.SELL, 10), exposures, QUOTES) is None
    assert limit.check(signal(Side.BUY, 1), exposures, QUOTES) is not None


def test_max_notional_when_buy_reaches_limit_at_ask_then_approves() -> None:
    exposures = {"MSFT": Exposure(position=D(100))}  # 100 x mid 10 = 1000
    limit = MaxNotional(D(2010))
    assert limit.check(signal(Side.BUY, 10), exposures, QUOTES) is None  # + 10 x ask 101


def test_max_notional_when_buy_passes_limit_at_ask_then_rejects_with_the_numbers() -> None:
    exposures = {"MSFT": Exposure(position=D(100))}
    rejection = MaxNotional(D(2009)).check(signal(Side.BUY, 10), exposures, QUOTES)
    assert rejection is not None
    assert rejection.message == (
        "NOTIONAL_LIMIT_EXCEEDED: symbol=AAPL, notional=2010, limit=2009, price=101, order=buy 10"
    )


def test_max_notional_when_sell_then_priced_at_bid() -> None:
    assert MaxNotional(D(990)).check(signal(Side.SELL, 10), {}, QUOTES) is None
    assert MaxNotional(D(989)).check(signal(Side.SELL, 10), {}, QUOTES) is not None


def test_max_notional_when_no_quote_for_symbol_then_rejects_no_price() -> None:
    rejection = MaxNotional(D(10**9)).check(signal(Side.BUY, 1, "IBM"), {}, QUOTES)
    assert rejection is not None and rejection.message == "NO_PRICE: symbol=IBM"


def test_max_notional_when_other_exposure_has_no_quote_then_rejects_no_price() -> None:
    exposures = {"IBM": Exposure(position=D(5))}
    rejection = MaxNotional(D(10**9)).check(signal(Side.BUY, 1), exposures, QUOTES)
    assert rejection is not None and rejection.reason is RejectReason.NO_PRICE


def test_max_notional_when_order_reduces_exposure_then_approved_above_limit() -> None:
    exposures = {"AAPL": Exposure(position=D(100))}
    assert MaxNotional(D(1000)).check(signal(Side.SELL, 10), exposures, QUOTES) is None
