"""Alpaca's order objects read into reports: every status mapped, quantities and prices exact,
the event's nanosecond time kept, malformed objects refused with what is wrong. Any body at all
(hypothesis: arbitrary JSON, and order-shaped objects with hostile values) either parses or
raises a `ParseError`, a `VenueError` naming the endpoint with a short, credential-free excerpt;
never a KeyError, TypeError or decimal.Overflow."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.core.events import OrderStatus
from components.execution.venues.alpaca import parsing
from components.execution.venues.base import OutcomeUnknown, VenueError

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
    with pytest.raises(parsing.ParseError, match="qty: not a number"):
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"symbol": "AAPL", "qty": "5"}, "positions: not a list"),
        ([{"qty": "5", "side": "long"}], "symbol: not a non-empty string"),
        ([{"symbol": "AAPL", "side": "long"}], "qty: not a number"),
        ([{"symbol": "AAPL", "qty": None}], "qty: not a number"),
        (["AAPL"], r"position \[0\]: not an object"),
        ([{"symbol": "AAPL", "qty": "1e999999999"}], "out of range"),
        ([{"symbol": "AAPL", "qty": "Infinity"}], "not finite"),
        ([{"symbol": "AAPL", "qty": "5", "side": "sideways"}], "side: not long or short"),
        ([{"symbol": "AAPL", "qty": "5"}, {"symbol": "AAPL", "qty": "1"}], "listed twice"),
    ],
)
def test_positions_when_malformed_then_venue_error_names_endpoint_and_body(
    body: Any, message: str
) -> None:
    with pytest.raises(parsing.ParseError, match=message) as info:
        parsing.read("GET /v2/positions", body, parsing.positions)
    error = info.value
    assert isinstance(error, VenueError) and isinstance(error, OutcomeUnknown)
    assert str(error).startswith("GET /v2/positions: unreadable answer: ")
    assert "(body: " in str(error) and len(str(error)) < 400


def test_read_when_body_holds_credential_like_fields_then_excerpt_masks_them() -> None:
    body = {"status": 7, "secret_key": "s3cr3t", "api_key_id": "PKX", "nested": {"token": "t"}}
    with pytest.raises(parsing.ParseError) as info:
        parsing.read("GET /v2/account", body, parsing.account)
    text = str(info.value)
    assert "status: not a string" in text
    assert "s3cr3t" not in text and "PKX" not in text and '"t"' not in text


def test_trade_update_when_fill_then_execution_id_and_report() -> None:
    data = {
        "event": "fill",
        "execution_id": "e-1",
        "qty": "10",
        "price": "100.02",
        "order": order(status="filled", filled_qty="10", filled_avg_price="100.02"),
    }
    update = parsing.trade_update(data)
    assert (update.event, update.execution_id) == ("fill", "e-1")
    assert (update.report.last_quantity, update.report.status) == (D(10), OrderStatus.FILLED)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "data: not an object"),
        ({"order": order()}, "event: not a non-empty string"),
        ({"event": "new", "order": "v1"}, "order: not an object"),
        ({"event": "fill", "order": order(status="filled"), "qty": "0", "price": "1"}, "> 0"),
        ({"event": "fill", "execution_id": 5, "order": order()}, "execution_id: not a string"),
    ],
)
def test_trade_update_when_malformed_then_parse_error(data: Any, message: str) -> None:
    with pytest.raises(parsing.ParseError, match=message):
        parsing.read("trade_updates", data, parsing.trade_update)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE = st.one_of(
    JSON,
    st.sampled_from(["1e999999999", "-1e999999999", "NaN", "sNaN", "Infinity", "", "1_0", "0x10"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


def _order_like(values: dict[str, Any]) -> dict[str, Any]:
    return {**order(), **values}


PARSERS = {
    "POST /v2/orders": parsing.report,
    "GET /v2/orders": parsing.reports,
    "GET /v2/positions": parsing.positions,
    "GET /v2/account": parsing.account,
    "trade_updates": parsing.trade_update,
}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(endpoint=st.sampled_from(sorted(PARSERS)), body=JSON)
def test_read_when_any_json_then_parsed_or_parse_error(endpoint: str, body: Any) -> None:
    try:
        parsing.read(endpoint, body, PARSERS[endpoint])
    except parsing.ParseError as exc:
        assert str(exc).startswith(f"{endpoint}: unreadable answer: ")


ORDER_FIELDS = ["qty", "filled_qty", "filled_avg_price", "status", "side", "symbol", "id",
                "client_order_id", "updated_at"]  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(values=st.dictionaries(st.sampled_from(ORDER_FIELDS), HOSTILE, max_size=4))
def test_read_when_order_fields_hostile_then_report_or_parse_error(values: dict[str, Any]) -> None:
    """An order object with odd values in its fields: a report with exact, bounded numbers, or
    a ParseError; and for fills the same through the trade_updates event and the positions."""
    body = _order_like(values)
    try:
        found = parsing.read("GET /v2/orders:by_client_order_id", body, parsing.report)
    except parsing.ParseError:
        pass
    else:
        assert found.quantity > 0 and found.filled_quantity >= 0
        assert abs(found.quantity) < parsing.MAX_MAGNITUDE
        found.quantity * 2 + found.filled_quantity  # arithmetic on it cannot overflow
    position = {"symbol": "AAPL", "qty": values.get("qty", "1"), "side": values.get("side")}
    with contextlib.suppress(parsing.ParseError):
        parsing.read("GET /v2/positions", [position], parsing.positions)
    event = {"event": "fill", "execution_id": "e", "qty": values.get("qty"), "order": body}
    with contextlib.suppress(parsing.ParseError):
        fill = {**event, "price": values.get("filled_qty")}
        parsing.read("trade_updates", fill, parsing.trade_update)
