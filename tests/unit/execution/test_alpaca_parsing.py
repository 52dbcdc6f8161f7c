"""Alpaca's order objects read into reports: every status mapped, quantities and prices exact,
the event's nanosecond time kept, malformed objects refused with what is wrong."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from components.core.events import OrderStatus
from components.execution.venues.alpaca import parsing

D = Decimal


def order(**fields: Any) -> dict[str, Any]:
    return {
        "id": "v1",
        "client_order_id": "c1",
        "symbol": "AAPL",
        "side": "buy",
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "status": "new",
        "updated_at": "2024-03-11T14:00:00.5Z",
        **fields,
    }


@pytest.mark.parametrize(
    ("alpaca", "ours"),
    [
        ("pending_new", OrderStatus.PENDING_NEW),
        ("accepted", OrderStatus.NEW),
        ("new", OrderStatus.NEW),
        ("done_for_day", OrderStatus.NEW),
        ("partially_filled", OrderStatus.PARTIALLY_FILLED),
        ("filled", OrderStatus.FILLED),
        ("pending_cancel", OrderStatus.PENDING_CANCEL),
        ("canceled", OrderStatus.CANCELED),
        ("replaced", OrderStatus.CANCELED),
        ("expired", OrderStatus.EXPIRED),
        ("rejected", OrderStatus.REJECTED),
    ],
)
def test_report_when_status_then_mapped(alpaca: str, ours: OrderStatus) -> None:
    assert parsing.report(order(status=alpaca)).status is ours


def test_report_when_fill_event_then_execution_and_its_nanosecond_time() -> None:
    body = order(status="partially_filled", filled_qty="4", filled_avg_price="100.015")
    event = {
        "event": "partial_fill",
        "qty": "4",
        "price": "100.015",
        "timestamp": "2024-03-11T14:00:01.000000123Z",
    }
    report = parsing.report(body, event)
    assert (report.filled_quantity, report.avg_fill_price) == (D(4), D("100.015"))
    assert (report.last_quantity, report.last_price) == (D(4), D("100.015"))
    assert report.ts_event_ns == 1_710_165_601_000_000_123


def test_report_when_calculated_then_filled_by_its_quantities() -> None:
    assert parsing.report(order(status="calculated", filled_qty="10")).status is OrderStatus.FILLED
    partly = order(status="calculated", filled_qty="3", filled_avg_price="1")
    assert parsing.report(partly).status is OrderStatus.PARTIALLY_FILLED


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "teleported"}, "status: unknown"),
        ({"filled_qty": "lots"}, "filled_qty: not a number"),
        ({"qty": "NaN"}, "qty: not finite"),
    ],
)
def test_report_when_malformed_then_parse_error_says_what(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(parsing.ParseError, match=message):
        parsing.report(order(**fields))
    with pytest.raises(parsing.ParseError, match="order object"):
        parsing.report({"status": "new"})


def test_timestamp_when_forms_then_ns_or_none() -> None:
    assert parsing.timestamp_ns("2024-03-11T10:00:00.5-04:00") == 1_710_165_600_500_000_000
    assert parsing.timestamp_ns("2024-03-11T14:00:00Z") == 1_710_165_600_000_000_000
    assert parsing.timestamp_ns("2024-13-11T14:00:00Z") is None
    assert parsing.timestamp_ns(None) is None


def test_positions_when_short_then_negative() -> None:
    body = [
        {"symbol": "AAPL", "qty": "5", "side": "long"},
        {"symbol": "MSFT", "qty": "-3", "side": "short"},
    ]
    assert parsing.positions(body) == {"AAPL": D(5), "MSFT": D(-3)}
