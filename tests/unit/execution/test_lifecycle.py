"""An order's lifecycle: every transition a venue can report, fills aggregated with their
average price and named by cumulative quantity (so duplicates add nothing), fills after a cancel
request or acknowledgement, stale reports ignored, impossible transitions refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.core.events import Order, OrderStatus, Side
from components.execution import lifecycle
from components.execution.venues.base import Report

D = Decimal
S = OrderStatus


def state(quantity: int = 10) -> lifecycle.OrderState:
    order = Order(
        client_order_id="c1",
        signal_id="s",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
    )
    return lifecycle.OrderState(order, "sim")


def report(
    status: OrderStatus,
    filled: str = "0",
    avg: str | None = None,
    last: str = "0",
    last_price: str | None = None,
) -> Report:
    return Report(
        client_order_id="c1",
        venue_order_id="v1",
        symbol="AAPL",
        side=Side.BUY,
        status=status,
        quantity=D(10),
        filled_quantity=D(filled),
        avg_fill_price=None if avg is None else D(avg),
        ts_event_ns=5,
        last_quantity=D(last),
        last_price=None if last_price is None else D(last_price),
    )


def test_apply_when_partial_fills_then_aggregated_with_average_price_and_named_by_level() -> None:
    order = state()
    assert order.apply(report(S.NEW)).update.status is S.NEW  # type: ignore[union-attr]
    first = order.apply(report(S.PARTIALLY_FILLED, "4", "100", "4", "100"))
    second = order.apply(report(S.FILLED, "10", "100.06", "6", "100.10"))
    assert first.fill is not None and second.fill is not None
    assert (first.fill.fill_id, first.fill.quantity, first.fill.price) == ("c1:4", D(4), D(100))
    assert (second.fill.fill_id, second.fill.quantity, second.fill.price) == (
        "c1:10",
        D(6),
        D("100.10"),
    )
    assert second.update is not None and second.update.status is S.FILLED
    assert (order.filled, order.avg_price, order.terminal) == (D(10), D("100.06"), True)


def test_apply_when_same_report_twice_then_second_adds_nothing() -> None:
    order = state()
    order.apply(report(S.PARTIALLY_FILLED, "4", "100", "4", "100"))
    again = order.apply(report(S.PARTIALLY_FILLED, "4", "100", "4", "100"))
    assert (again.fill, again.update, again.stale) == (None, None, True)
    assert order.filled == D(4)


def test_apply_when_older_report_after_newer_then_stale_and_ignored() -> None:
    order = state()
    order.apply(report(S.FILLED, "10", "100", "10", "100"))
    late = order.apply(report(S.NEW))
    assert late.stale and late.update is None and late.refused is None
    assert order.status is S.FILLED


def test_apply_when_executions_missed_then_one_fill_priced_from_the_venue_average() -> None:
    order = state()
    order.apply(report(S.PARTIALLY_FILLED, "4", "100", "4", "100"))
    # The 4 -> 7 execution was missed; the report for 7 -> 10 carries the average of all 10.
    outcome = order.apply(report(S.FILLED, "10", "100.3", "3", "101"))
    assert outcome.fill is not None
    assert (outcome.fill.quantity, outcome.fill.price) == (D(6), D("100.5"))
    assert order.notional == D("1003.0")


def test_apply_when_fill_after_cancel_request_then_filled_quantity_grows_status_stays() -> None:
    order = state()
    order.apply(report(S.NEW))
    order.force(S.PENDING_CANCEL, "asked", 1)
    outcome = order.apply(report(S.PARTIALLY_FILLED, "3", "100", "3", "100"))
    assert outcome.fill is not None and outcome.update is not None
    assert (outcome.update.status, outcome.update.filled_quantity) == (S.PENDING_CANCEL, D(3))
    assert order.apply(report(S.CANCELED, "3", "100")).update.status is S.CANCELED  # type: ignore[union-attr]


def test_apply_when_late_fill_after_cancel_ack_then_fill_applied_and_completes_to_filled() -> None:
    order = state()
    order.apply(report(S.NEW))
    order.apply(report(S.CANCELED))
    partial = order.apply(report(S.PARTIALLY_FILLED, "4", "100", "4", "100"))
    assert partial.fill is not None and order.status is S.CANCELED
    complete = order.apply(report(S.FILLED, "10", "100", "6", "100"))
    assert complete.fill is not None and order.status is S.FILLED


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (S.FILLED, S.CANCELED),
        (S.REJECTED, S.FILLED),
        (S.CANCELED, S.EXPIRED),
        (S.EXPIRED, S.REJECTED),
    ],
)
def test_apply_when_transition_impossible_then_refused_not_applied(
    before: OrderStatus, after: OrderStatus
) -> None:
    order = state()
    order.force(before, "", 1)
    outcome = order.apply(report(after))
    assert outcome.refused is not None and outcome.update is None
    assert str(outcome.refused) == f"order c1: {before} cannot become {after}"
    assert order.status is before


def test_apply_when_rejected_by_venue_then_terminal_with_reason() -> None:
    order = state()
    rejected = Report(
        **{**msgspec_fields(report(S.REJECTED)), "reason": "insufficient buying power"}
    )
    outcome = order.apply(rejected)
    assert outcome.update is not None and outcome.update.reason == "insufficient buying power"
    assert order.terminal


def msgspec_fields(value: Report) -> dict[str, object]:
    return {name: getattr(value, name) for name in value.__struct_fields__}


@pytest.mark.parametrize(
    ("filled", "avg", "last", "last_price"),
    [
        ("4", None, "0", None),
        ("4", "0", "0", None),
        ("4", None, "4", "-1"),
        ("NaN", None, "0", None),
    ],
)
def test_apply_when_fill_without_usable_price_then_invalid_and_nothing_applied(
    filled: str, avg: str | None, last: str, last_price: str | None
) -> None:
    order = state()
    with pytest.raises(lifecycle.InvalidReport):
        order.apply(report(S.PARTIALLY_FILLED, filled, avg, last, last_price))
    assert (order.filled, order.status, order.fills) == (D(0), S.PENDING_NEW, [])
