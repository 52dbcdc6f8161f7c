"""Alpaca's order objects, trade_updates events, positions and account, read into our types
(and orders written).

Alpaca statuses map onto ours: `accepted`, `new` and the other working states are `new`;
`pending_new` is still on its way; `done_for_day` stays working (it resumes next session);
`replaced` is canceled (this engine never replaces, so someone else did); `calculated` is
filled or partly filled by its quantities. Quantities and prices are strings: read as Decimal,
finite, below `MAX_MAGNITUDE` and with at most `MAX_DIGITS` decimals (a number that would
overflow Decimal arithmetic later is refused here).

Nothing in a body is trusted: a missing field, a wrong type, a number that is not one, or a list
that is an object each raise `ParseError`, never a KeyError or TypeError. `read(endpoint, body,
parser)` adds the endpoint and a short excerpt of the body (values of fields whose names suggest
credentials are masked) to the message. `ParseError` is an `OutcomeUnknown`: an answer that cannot
be read says nothing of what the venue did, so a submit is looked up before any resend.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from components.core.events import Order, OrderStatus, OrderType, Side
from components.execution.venues.base import OutcomeUnknown, Report

T = TypeVar("T")

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
MAX_DIGITS = 15  # integer digits: above any real quantity, price or balance
MAX_MAGNITUDE = Decimal(10) ** MAX_DIGITS
EXCERPT_CHARS = 160
_SECRET_NAMES = re.compile(r"secret|key|token|password|auth", re.IGNORECASE)


class ParseError(OutcomeUnknown, ValueError):
    """A venue answer or event that does not say what it should: `problem` is what is wrong,
    `endpoint` where it came from (when known)."""

    def __init__(self, problem: str, *, endpoint: str = "", body: Any = None) -> None:
        where = f"{endpoint}: unreadable answer: " if endpoint else ""
        shown = f" (body: {excerpt(body)})" if endpoint else ""
        super().__init__(f"{where}{problem}{shown}")
        self.problem = problem
        self.endpoint = endpoint


def excerpt(body: Any) -> str:
    """At most `EXCERPT_CHARS` of `body` as compact JSON, credential-like fields masked."""
    try:
        text = json.dumps(_masked(body), separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(body))
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def _masked(body: Any, depth: int = 0) -> Any:
    if depth > 4:
        return "..."
    if isinstance(body, dict):
        return {
            str(k): "***" if _SECRET_NAMES.search(str(k)) else _masked(v, depth + 1)
            for k, v in list(body.items())[:20]
        }
    if isinstance(body, list):
        return [_masked(item, depth + 1) for item in body[:5]]
    return body


def read(endpoint: str, body: Any, parser: Callable[[Any], T]) -> T:
    """`parser(body)`; its `ParseError` (or any slip of it) named after `endpoint`, with an
    excerpt of `body`."""
    try:
        return parser(body)
    except ParseError as exc:
        raise ParseError(exc.problem, endpoint=endpoint, body=body) from exc
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise ParseError(f"{type(exc).__name__}: {exc}", endpoint=endpoint, body=body) from exc


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ParseError(f"{field}: not a number ({excerpt(value)})")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ParseError(f"{field}: not a number ({excerpt(value)})") from exc
    if not number.is_finite():
        raise ParseError(f"{field}: not finite ({value!r})")
    # By the exponent, not by arithmetic: abs() of 1e999999999 itself raises decimal.Overflow.
    if number and number.adjusted() >= MAX_DIGITS:
        raise ParseError(f"{field}: out of range ({excerpt(value)})")
    if number.as_tuple().exponent < -MAX_DIGITS:  # type: ignore[operator]
        raise ParseError(f"{field}: too many decimals ({excerpt(value)})")
    return number


def _text(mapping: dict[str, Any], field: str) -> str:
    value = mapping.get(field)
    if not isinstance(value, str) or not value:
        raise ParseError(f"{field}: not a non-empty string ({excerpt(value)})")
    return value


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ParseError(f"{what}: not an object ({type(body).__name__})")
    return body


def timestamp_ns(text: Any) -> int | None:
    """An RFC 3339 time such as `2024-03-11T14:00:00.123456789Z` in ns since the epoch, or None
    (Alpaca sends nanoseconds, which `datetime` cannot hold: the fraction is read apart)."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    main, fraction, zone = match.groups()
    try:
        seconds = dt.datetime.fromisoformat(main + ("+00:00" if zone == "Z" else zone))
        whole_s = int(seconds.timestamp())
    except (ValueError, OverflowError, OSError):
        return None
    if whole_s < 0:
        return None
    return whole_s * 1_000_000_000 + int((fraction or "").ljust(9, "0")[:9])


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


def report(order: Any, event: dict[str, Any] | None = None) -> Report:
    """The report an order object says, with the execution of a fill `event` if given."""
    order = _object(order, "order")
    status_text = order.get("status")
    if not isinstance(status_text, str):
        raise ParseError(f"status: not a string ({excerpt(status_text)})")
    status = STATUSES.get(status_text)
    filled = _decimal(order.get("filled_qty") or 0, "filled_qty")
    quantity = _decimal(order.get("qty"), "qty")
    if filled < 0 or quantity <= 0:
        raise ParseError(f"qty {quantity}, filled_qty {filled}: must be > 0 and >= 0")
    if status_text == "calculated":
        status = S.FILLED if filled >= quantity else S.PARTIALLY_FILLED
    if status is None:
        raise ParseError(f"status: unknown ({status_text!r})")
    side_text = order.get("side")
    if side_text not in ("buy", "sell"):
        raise ParseError(f"side: not buy or sell ({excerpt(side_text)})")
    avg = order.get("filled_avg_price")
    avg_price = None if avg in (None, "") else _decimal(avg, "filled_avg_price")
    last_quantity, last_price = Decimal(0), None
    if event is not None and event.get("event") in FILL_EVENTS:
        last_quantity = _decimal(event.get("qty"), "qty")
        last_price = _decimal(event.get("price"), "price")
        if last_quantity <= 0 or last_price <= 0:
            raise ParseError(f"fill of {last_quantity} at {last_price}: must be > 0")
    return Report(
        client_order_id=_text(order, "client_order_id"),
        venue_order_id=_text(order, "id"),
        symbol=_text(order, "symbol"),
        side=Side(side_text),
        status=status,
        quantity=quantity,
        filled_quantity=filled,
        avg_fill_price=avg_price,
        ts_event_ns=_event_time(order, event),
        last_quantity=last_quantity,
        last_price=last_price,
        reason=str(event.get("event")) if event and status in (S.REJECTED,) else "",
    )


def reports(body: Any) -> list[Report]:
    """`GET /v2/orders`: a list of order objects (one unreadable order fails the whole list:
    a reconciliation that skipped it would miss an order)."""
    if not isinstance(body, list):
        raise ParseError(f"orders: not a list ({type(body).__name__})")
    found = []
    for index, order in enumerate(body):
        try:
            found.append(report(order))
        except ParseError as exc:
            raise ParseError(f"order [{index}]: {exc.problem}") from exc
    return found


def venue_order_id(body: Any) -> str:
    """The venue's id of an order object."""
    return _text(_object(body, "order"), "id")


@dataclasses.dataclass(frozen=True)
class TradeUpdate:
    """A trade_updates event: its report, and the execution it is about (fills only)."""

    event: str
    report: Report
    execution_id: str | None


def trade_update(data: Any) -> TradeUpdate:
    """The `data` of a trade_updates message: `event`, `order`, and for fills `execution_id`,
    `qty`, `price`, `timestamp`."""
    data = _object(data, "data")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise ParseError(f"event: not a non-empty string ({excerpt(event)})")
    execution_id = data.get("execution_id") if event in FILL_EVENTS else None
    if execution_id is not None and not isinstance(execution_id, str):
        raise ParseError(f"execution_id: not a string ({excerpt(execution_id)})")
    return TradeUpdate(event, report(data.get("order"), data), execution_id or None)


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
        raise ParseError(f"positions: not a list ({type(body).__name__})")
    held: dict[str, Decimal] = {}
    for index, position in enumerate(body):
        position = _object(position, f"position [{index}]")
        symbol = _text(position, "symbol")
        qty = _decimal(position.get("qty"), f"position [{index}] qty")
        side = position.get("side", "long" if qty >= 0 else "short")
        if side not in ("long", "short"):
            raise ParseError(f"position [{index}] side: not long or short ({excerpt(side)})")
        if side == "short" and qty > 0:
            qty = -qty
        if symbol in held:
            raise ParseError(f"position [{index}]: {symbol} listed twice")
        held[symbol] = qty
    return held


ACCOUNT_NUMBERS = ("buying_power", "cash", "equity")


def account(body: Any) -> dict[str, Any]:
    """`GET /v2/account`, its balances read as Decimal (others kept as sent)."""
    body = _object(body, "account")
    status = body.get("status")
    if not isinstance(status, str):
        raise ParseError(f"status: not a string ({excerpt(status)})")
    read_numbers = {
        field: _decimal(body[field], field) for field in ACCOUNT_NUMBERS if field in body
    }
    return {**body, **read_numbers}
