"""The risk engine on a fake clock, without a bus: the signal lifecycle by type, the circuit
breaker (each trigger, recovery through half-open, reduced sizes while testing, a daily-loss trip
held until the next session, manual trip and reset, reducing orders while open), stops raising
exits that pass the same checks, and daily P&L from the session's start."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from components.core.config import TradingSystemSpec
from components.core.events import (
    BreakerState,
    Fill,
    Order,
    OrderType,
    Side,
    Signal,
    TimeInForce,
)
from components.risk import breaker, lifecycle
from components.risk.engine import RiskEngine
from tests.factories import quote

D = Decimal
S = 1_000_000_000
# 10:00 in New York on a Monday: inside the session of 2024-03-11.
T0 = int(dt.datetime.fromisoformat("2024-03-11T14:00:00+00:00").timestamp()) * S
_ids = itertools.count(1)


def make_engine(**risk: Any) -> RiskEngine:
    settings: dict[str, Any] = {
        "limits": {"max_position": 100, "max_notional": 100_000, "max_order_quantity": 100},
        "breaker": {
            "max_daily_loss": 500,
            "max_drawdown_pct": 2,
            "drawdown_window_s": 60,
            "max_move_pct": 10,
            "volatility_window_s": 60,
            "recovery_wait_s": 30,
            "half_open_test_s": 30,
            "half_open_size_pct": 20,
        },
        "initial_cash": 100_000,
    }
    for key, value in risk.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    spec = TradingSystemSpec.model_validate({"symbols": ["AAPL", "MSFT"], "risk": settings})
    engine = RiskEngine(spec)
    engine.start("test", T0)
    engine.on_quote(quote("99.99", "100.01"), T0)
    return engine


def signal(quantity: int = 10, side: Side = Side.BUY, symbol: str = "AAPL") -> Signal:
    return Signal(
        signal_id=f"s{next(_ids)}",
        strategy="test",
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        ts_event_ns=T0,
        ts_origin_ns=T0,
    )


def check(engine: RiskEngine, now_ns: int, quantity: int = 10, side: Side = Side.BUY) -> Any:
    return engine.check(signal(quantity, side), now_ns + S, now_ns)


def fill(order: Order, price: str, fill_id: str | None = None) -> Fill:
    return Fill(
        fill_id=fill_id or f"f{next(_ids)}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        price=D(price),
        fee=D(0),
        venue="test",
        ts_event_ns=1,
    )


def buy_and_fill(engine: RiskEngine, now_ns: int, quantity: int, price: str) -> Order:
    decision = check(engine, now_ns, quantity)
    assert isinstance(decision, lifecycle.Approved), decision
    engine.on_fill(fill(decision.order, price), now_ns)
    return decision.order


def rejected_reason(decision: Any) -> str:
    assert isinstance(decision, lifecycle.Rejected), decision
    return decision.rejection.message


# --- lifecycle -------------------------------------------------------------------------------


def test_lifecycle_when_validated_or_approved_built_by_hand_then_type_error() -> None:
    s = signal()
    with pytest.raises(TypeError, match=r"lifecycle\.validate"):
        lifecycle.Validated(s, object())
    with pytest.raises(TypeError, match=r"lifecycle\.approve"):
        lifecycle.Approved(s, None, object())  # type: ignore[arg-type]


def test_check_when_approved_then_order_logged_as_pending_exposure() -> None:
    engine = make_engine()
    decision = check(engine, T0, 10)
    assert isinstance(decision, lifecycle.Approved)
    assert (
        decision.order.quantity == D(10) and decision.order.signal_id == decision.signal.signal_id
    )
    assert engine.exposures()["AAPL"].pending_buy == D(10)


def test_check_when_rejected_then_metric_by_reason_and_symbol() -> None:
    engine = make_engine()
    assert rejected_reason(check(engine, T0, 101)).startswith("ORDER_QUANTITY_EXCEEDED")
    sample = engine.metrics.rejections.labels("ORDER_QUANTITY_EXCEEDED", "AAPL")._value.get()
    assert sample == 1


def typed(order_type: OrderType, **fields: Any) -> Signal:
    return msgspec.structs.replace(signal(10), order_type=order_type, **fields)


@pytest.mark.parametrize(
    ("order_type", "fields"),
    [
        (OrderType.STOP, {"stop_price": D("100.50")}),
        (OrderType.STOP, {"stop_price": D("100.50"), "time_in_force": TimeInForce.GTC}),
        (OrderType.STOP_LIMIT, {"stop_price": D("100.50"), "limit_price": D("100.60")}),
        (OrderType.MARKET, {"time_in_force": TimeInForce.IOC}),
        (OrderType.LIMIT, {"limit_price": D("100"), "time_in_force": TimeInForce.IOC}),
    ],
)
def test_check_when_stop_or_time_in_force_then_carried_onto_the_order(
    order_type: OrderType, fields: dict[str, Any]
) -> None:
    engine = make_engine()
    decision = engine.check(typed(order_type, **fields), T0 + S, T0)
    assert isinstance(decision, lifecycle.Approved), decision
    order = decision.order
    expected = {"stop_price": None, "limit_price": None, "time_in_force": TimeInForce.DAY}
    expected.update(fields)
    assert order.order_type is order_type
    assert {k: getattr(order, k) for k in expected} == expected
    logged = engine.state.approvals[order.client_order_id].order
    assert (logged.stop_price, logged.time_in_force) == (
        expected["stop_price"],
        expected["time_in_force"],
    )


@pytest.mark.parametrize(
    ("order_type", "fields", "problem"),
    [
        (OrderType.STOP, {}, "a stop order needs a stop price"),
        (OrderType.STOP, {"stop_price": D(0)}, "stop price must be > 0 (was 0)"),
        (OrderType.STOP, {"stop_price": D(-1)}, "stop price must be > 0 (was -1)"),
        (OrderType.STOP, {"stop_price": D("NaN")}, "stop price must be > 0 (was NaN)"),
        (OrderType.STOP_LIMIT, {"stop_price": D(100)}, "a stop_limit order needs a limit price"),
        (
            OrderType.STOP,
            {"stop_price": D("100.50"), "time_in_force": TimeInForce.IOC},
            "a stop order cannot be IOC: it waits for its stop price",
        ),
        (
            OrderType.MARKET,
            {"stop_price": D("100.50")},
            "a market order takes no stop price (was 100.50)",
        ),
        (
            OrderType.STOP,
            {"stop_price": D("2e12")},
            "stop price 2E+12 is above the maximum 1E+12",
        ),
        (
            OrderType.STOP,
            {"stop_price": D("100.0000000000001")},
            "stop price 100.0000000000001 has more than 12 decimal places",
        ),
    ],
)
def test_check_when_stop_fields_unusable_then_invalid_signal_with_the_problem(
    order_type: OrderType, fields: dict[str, Any], problem: str
) -> None:
    engine = make_engine()
    decision = engine.check(typed(order_type, **fields), T0 + S, T0)
    assert rejected_reason(decision) == f"INVALID_SIGNAL: symbol=AAPL, problem={problem}"
    assert engine.state.approvals == {}


def test_check_when_stop_price_outside_collar_then_rejected() -> None:
    engine = make_engine(limits={"price_collar_bps": 100})
    decision = engine.check(typed(OrderType.STOP, stop_price=D("101.01")), T0 + S, T0)
    assert rejected_reason(decision).startswith(
        "PRICE_OUTSIDE_COLLAR: symbol=AAPL, stop_price=101.01, reference=100.00"
    )


# --- breaker ---------------------------------------------------------------------------------


def test_breaker_when_price_crashes_within_window_then_trips_and_rejects_new_orders() -> None:
    engine = make_engine()
    engine.on_quote(quote("94.99", "95.01"), T0 + 10 * S)
    assert engine.state.breaker.state is BreakerState.CLOSED
    engine.on_quote(quote("89.99", "90.01"), T0 + 20 * S)  # -10 % from 100 within 60 s
    b = engine.state.breaker
    assert (b.state, b.trigger) == (BreakerState.OPEN, breaker.Trigger.VOLATILITY)
    assert b.reason.startswith("AAPL fell 10.00% (100.00 to 90.00) within 60 s")
    assert rejected_reason(check(engine, T0 + 21 * S)).startswith("BREAKER_OPEN: symbol=AAPL")
    assert engine.metrics.breaker_state._value.get() == 2


def test_breaker_when_moves_spread_over_more_than_window_then_stays_closed() -> None:
    engine = make_engine()
    for step in range(1, 11):  # 1 % a step, 61 s apart: never 10 % within 60 s
        price = D(100) - step
        engine.on_quote(quote(str(price - D("0.01")), str(price + D("0.01"))), T0 + step * 61 * S)
    assert engine.state.breaker.state is BreakerState.CLOSED


def test_breaker_when_open_then_recovers_through_half_open_with_reduced_sizes() -> None:
    engine = make_engine()
    engine.trip(breaker.Trigger.DRAWDOWN, "test", T0)
    engine.tick(T0 + 29 * S)
    assert engine.state.breaker.state is BreakerState.OPEN
    engine.tick(T0 + 30 * S)
    assert engine.state.breaker.state is BreakerState.HALF_OPEN
    assert isinstance(check(engine, T0 + 31 * S, 20), lifecycle.Approved)  # 20 % of 100
    assert rejected_reason(check(engine, T0 + 31 * S, 21)) == (
        "BREAKER_HALF_OPEN_SIZE: symbol=AAPL, quantity=21, limit=20"
    )
    engine.tick(T0 + 60 * S)
    assert engine.state.breaker.state is BreakerState.CLOSED
    assert isinstance(check(engine, T0 + 61 * S, 21), lifecycle.Approved)
    states = [(h.state, h.trigger) for h in engine.state.breaker.history]
    assert states == [
        (BreakerState.OPEN, "drawdown"),
        (BreakerState.HALF_OPEN, "recovery_wait"),
        (BreakerState.CLOSED, "test_passed"),
    ]


def test_breaker_when_trip_during_half_open_then_open_again() -> None:
    engine = make_engine()
    engine.trip(breaker.Trigger.DRAWDOWN, "first", T0)
    engine.tick(T0 + 30 * S)
    engine.trip(breaker.Trigger.VOLATILITY, "again", T0 + 35 * S)
    assert engine.state.breaker.state is BreakerState.OPEN
    engine.tick(T0 + 60 * S)  # the recovery wait counts from the new trip
    assert engine.state.breaker.state is BreakerState.OPEN


def test_breaker_when_daily_loss_then_open_until_next_session_then_half_open() -> None:
    engine = make_engine()
    buy_and_fill(engine, T0, 100, "100.01")
    engine.on_quote(quote("95.99", "96.01"), T0 + 3600 * S)  # -4.01 x 100 = -401: within the limit
    assert engine.state.breaker.state is BreakerState.CLOSED
    engine.on_quote(quote("94.99", "95.01"), T0 + 7200 * S)  # -501: past it
    b = engine.state.breaker
    assert (b.state, b.trigger) == (BreakerState.OPEN, "daily_loss")
    assert b.reason == "daily P&L -501.00 <= -500"
    engine.tick(T0 + 5 * 3600 * S)  # 15:00 New York: same session, long after recovery_wait
    assert engine.state.breaker.state is BreakerState.OPEN
    engine.tick(T0 + 24 * 3600 * S)  # 10:00 next day: a new session
    assert engine.state.session == "2024-03-12"
    assert (engine.state.breaker.state, engine.state.breaker.trigger) == (
        BreakerState.HALF_OPEN,
        "new_session",
    )


def test_breaker_when_equity_falls_from_peak_within_window_then_drawdown_trip() -> None:
    engine = make_engine(breaker={"max_daily_loss": 100_000, "max_move_pct": 50})
    buy_and_fill(engine, T0, 100, "100.01")
    engine.on_quote(quote("149.99", "150.01"), T0 + 100 * S)  # equity 104 999
    engine.on_quote(quote("128.99", "129.01"), T0 + 110 * S)  # -2 100: 2.0 % of the peak
    b = engine.state.breaker
    assert (b.state, b.trigger) == (BreakerState.OPEN, "drawdown")
    assert b.reason.startswith("equity 102899.00 is 2.00% below its peak 104999.00")


def test_breaker_when_manual_trip_then_only_manual_reset_closes_it() -> None:
    engine = make_engine()
    engine.trip(breaker.Trigger.MANUAL, "operator says stop", T0)
    engine.tick(T0 + 3 * 24 * 3600 * S)
    assert engine.state.breaker.state is BreakerState.OPEN
    assert engine.reset("admin", T0 + 3 * 24 * 3600 * S + 1)
    assert engine.state.breaker.state is BreakerState.CLOSED
    assert not engine.reset("admin", T0 + 3 * 24 * 3600 * S + 2)  # nothing to reset


def test_breaker_when_open_and_order_reduces_then_passes_if_configured() -> None:
    engine = make_engine()
    buy_and_fill(engine, T0, 50, "100.01")
    engine.trip(breaker.Trigger.MANUAL, "stop", T0 + S)
    assert isinstance(check(engine, T0 + 2 * S, 50, Side.SELL), lifecycle.Approved)
    assert rejected_reason(check(engine, T0 + 2 * S, 1, Side.SELL)).startswith("BREAKER_OPEN")

    strict = make_engine(breaker={"allow_reducing_when_open": False})
    buy_and_fill(strict, T0, 50, "100.01")
    strict.trip(breaker.Trigger.MANUAL, "stop", T0 + S)
    assert rejected_reason(check(strict, T0 + 2 * S, 10, Side.SELL)).startswith("BREAKER_OPEN")


# --- stops -----------------------------------------------------------------------------------


def test_stop_loss_when_bid_falls_past_limit_then_exit_approved_once() -> None:
    engine = make_engine(stops={"stop_loss_pct": 2})
    buy_and_fill(engine, T0, 10, "100")
    assert engine.on_quote(quote("98.01", "98.03"), T0 + S) == []
    [exit_order] = engine.on_quote(quote("98.00", "98.02"), T0 + 2 * S)
    order = exit_order.order
    assert (order.side, order.quantity, exit_order.signal.strategy) == (
        Side.SELL,
        D(10),
        "risk.stops",
    )
    assert exit_order.signal.reason.startswith("STOP_LOSS: symbol=AAPL, entry=100, price=98.00")
    assert engine.on_quote(quote("97.00", "97.02"), T0 + 3 * S) == []  # its exit is pending


def test_trailing_stop_when_price_falls_from_peak_then_exit() -> None:
    engine = make_engine(stops={"trailing_stop_pct": 5})
    buy_and_fill(engine, T0, 10, "100")
    assert engine.on_quote(quote("110.00", "110.02"), T0 + S) == []
    assert engine.on_quote(quote("104.51", "104.53"), T0 + 2 * S) == []  # 4.99 % off 110
    [exit_order] = engine.on_quote(quote("104.50", "104.52"), T0 + 3 * S)
    assert exit_order.signal.reason.startswith("TRAILING_STOP: symbol=AAPL, best=110.00")


def test_trailing_stop_when_position_closed_and_reopened_then_trails_from_new_entry() -> None:
    engine = make_engine(stops={"trailing_stop_pct": 5})
    first = buy_and_fill(engine, T0, 10, "100")
    engine.on_quote(quote("110.00", "110.02"), T0 + S)
    close = check(engine, T0 + 2 * S, 10, Side.SELL)
    engine.on_fill(fill(close.order, "110"), T0 + 2 * S)
    assert engine.state.stop_peaks == {}  # the logged peak went with its position
    buy_and_fill(engine, T0 + 3 * S, 10, "100")  # flat in between: no quote saw it
    assert first.client_order_id != close.order.client_order_id
    # 9 % below the old position's peak, at the new one's entry: no exit.
    assert engine.on_quote(quote("100.00", "100.02"), T0 + 4 * S) == []
    [exit_order] = engine.on_quote(quote("95.00", "95.02"), T0 + 5 * S)
    assert exit_order.signal.reason.startswith("TRAILING_STOP: symbol=AAPL, best=100")


def test_take_profit_when_short_gains_then_buy_to_cover() -> None:
    engine = make_engine(stops={"take_profit_pct": 3})
    decision = check(engine, T0, 10, Side.SELL)
    assert isinstance(decision, lifecycle.Approved)
    engine.on_fill(fill(decision.order, "100"), T0)
    [exit_order] = engine.on_quote(quote("96.98", "97.00"), T0 + S)  # ask 97: +3 %
    assert (exit_order.order.side, exit_order.order.quantity) == (Side.BUY, D(10))


def test_stop_exit_when_breaker_open_then_still_passes_as_reducing() -> None:
    engine = make_engine(stops={"stop_loss_pct": 2})
    buy_and_fill(engine, T0, 10, "100")
    engine.trip(breaker.Trigger.MANUAL, "stop", T0)
    assert len(engine.on_quote(quote("97.00", "97.02"), T0 + S)) == 1


# --- P&L -------------------------------------------------------------------------------------


def test_daily_pnl_when_new_session_then_counts_from_its_start_equity() -> None:
    engine = make_engine()
    buy_and_fill(engine, T0, 10, "100")
    engine.on_quote(quote("101.99", "102.01"), T0 + S)
    assert engine.daily_pnl() == D("20.00")
    engine.on_quote(quote("102.99", "103.01"), T0 + 24 * 3600 * S)
    assert engine.state.session == "2024-03-12"
    assert engine.daily_pnl() == D(0)
    engine.on_quote(quote("103.99", "104.01"), T0 + 24 * 3600 * S + 1)
    assert engine.daily_pnl() == D("10.00")


def test_on_quote_when_crossed_or_nan_then_skipped_and_counted() -> None:
    engine = make_engine()
    assert engine.on_quote(quote("100.02", "100.01"), T0 + S) == []
    assert engine.on_quote(quote("NaN", "100.01"), T0 + S) == []
    assert engine.metrics.skipped_quotes._value.get() == 2
    assert engine.quotes["AAPL"].bid_price == D("99.99")


def test_session_when_new_after_restart_then_starts_once_every_position_is_priced() -> None:
    engine = make_engine()
    buy_and_fill(engine, T0, 10, "100")
    engine.state.book.marks.clear()  # as after a restart: quotes are not logged
    restarted = RiskEngine(engine.spec, state=engine.state)
    next_day = T0 + 24 * 3600 * S
    restarted.tick(next_day)
    assert restarted.state.session == "2024-03-11"  # AAPL has no price yet
    restarted.on_quote(quote("101.99", "102.01"), next_day + S)
    assert restarted.state.session == "2024-03-12"
    assert restarted.state.session_start_equity == restarted.state.book.equity()
    assert restarted.daily_pnl() == D(0)


def test_stop_exit_when_position_above_max_order_quantity_then_exits_in_parts() -> None:
    engine = make_engine(
        limits={"max_position": 500, "max_order_quantity": 100, "max_order_value": 100_000},
        stops={"stop_loss_pct": 2},
    )
    for _ in range(2):
        buy_and_fill(engine, T0, 100, "100")
    engine.on_quote(quote("99.99", "100.01"), T0)
    [first] = engine.on_quote(quote("97.00", "97.02"), T0 + S)
    assert first.order.quantity == D(100)
    engine.on_fill(fill(first.order, "97.00"), T0 + S)
    [second] = engine.on_quote(quote("97.00", "97.02"), T0 + 2 * S)
    assert second.order.quantity == D(100)
