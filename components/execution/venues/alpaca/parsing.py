"""Alpaca's order objects and trade_updates events, read into `Report`s (and orders written).

Alpaca statuses map onto ours: `accepted`, `new` and the other working states are `new`;
`pending_new` is still on its way; `done_for_day` stays working (it resumes next session);
`replaced` is canceled (this engine never replaces, so someone else did); `calculated` is
filled or partly filled by its quantities. Quantities and prices are strings: read as Decimal.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from components.core.events import Order, OrderStatus, OrderType, Side
from components.execution.venues.base import Report

S = OrderStatus
STATUSES: dict[str, OrderStatus] = {
    "pending_new": S.PENDING_NEW,
    "accepted": S.NEW,
    "new": S.NEW,
    "accepted_for_bidding": S.NEW,
    "done_for_day": S.NEW,
    "pending_replace": S.NEW,
    "stopped": S.NEW,
    "suspended": S.NEW,
    "held": S.NEW,
    "partially_filled": S.PARTIALLY_FILLED,
    "filled": S.FILLED,
    "pending_cancel": S.PENDING_CANCEL,
    "canceled": S.CANCELED,
    "replaced": S.CANCELED,
    "expired": S.EXPIRED,
    "rejected": S.REJECTED,
}
FILL_EVENTS = frozenset({"fill", "partial_fill"})
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class ParseError(ValueError):
    """An order object or event that does not say what an order did."""


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ParseError(f"{field}: not a number ({value!r})") from exc
    if not number.is_finite():
        raise ParseError(f"{field}: not finite ({value!r})")
    return number


def timestamp_ns(text: Any) -> int | None:
    """An RFC 3339 time such as `2024-03-11T14:00:00.123456789Z` in ns since the epoch, or None
    (Alpaca sends nanoseconds, which `datetime` cannot hold: the fraction is read apart)."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    main, fraction, zone = match.groups()
    try:
        seconds = dt.datetime.fromisoformat(main + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return int(seconds.timestamp()) * 1_000_000_000 + int((fraction or "").ljust(9, "0")[:9])


def order_body(order: Order) -> dict[str, Any]:
    """The JSON body of `POST /v2/orders` for `order`."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": str(order.quantity),
        "side": order.side.value,
        "type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "client_order_id": order.client_order_id,
    }
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        body["limit_price"] = str(order.limit_price)
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        body["stop_price"] = str(order.stop_price)
    return body


def report(order: dict[str, Any], event: dict[str, Any] | None = None) -> Report:
    """The report an order object says, with the execution of a fill `event` if given."""
    try:
        status_text = str(order["status"])
        status = STATUSES.get(status_text)
        filled = _decimal(order.get("filled_qty") or 0, "filled_qty")
        quantity = _decimal(order["qty"], "qty")
        if status_text == "calculated":
            status = S.FILLED if filled >= quantity else S.PARTIALLY_FILLED
        if status is None:
            raise ParseError(f"status: unknown ({status_text!r})")
        avg = order.get("filled_avg_price")
        last_quantity, last_price = Decimal(0), None
        if event is not None and event.get("event") in FILL_EVENTS:
            last_quantity = _decimal(event["qty"], "qty")
            last_price = _decimal(event["price"], "price")
        return Report(
            client_order_id=str(order["client_order_id"]),
            venue_order_id=str(order["id"]),
            symbol=str(order["symbol"]),
            side=Side(order["side"]),
            status=status,
            quantity=quantity,
            filled_quantity=filled,
            avg_fill_price=None if avg in (None, "") else _decimal(avg, "filled_avg_price"),
            ts_event_ns=_event_time(order, event),
            last_quantity=last_quantity,
            last_price=last_price,
            reason=str(event.get("event")) if event and status in (S.REJECTED,) else "",
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise ParseError(f"order object: {exc!r}") from exc


def _event_time(order: dict[str, Any], event: dict[str, Any] | None) -> int:
    """When it happened at the venue: the event's time, else the order's last update, else now."""
    for text in ((event or {}).get("timestamp"), order.get("updated_at")):
        ns = timestamp_ns(text)
        if ns is not None:
            return ns
    return time.time_ns()


def positions(body: Any) -> dict[str, Decimal]:
    """`GET /v2/positions` as signed shares by symbol (a short's qty is negative)."""
    if not isinstance(body, list):
        raise ParseError("positions: not a list")
    held: dict[str, Decimal] = {}
    for position in body:
        qty = _decimal(position["qty"], "qty")
        if position.get("side") == "short" and qty > 0:
            qty = -qty
        held[str(position["symbol"])] = qty
    return held
