"""A signal's way through the risk manager, one type per stage:

    Unchecked ──validate──▶ Validated ──limits, breaker──▶ Approved | Rejected

Only an `Approved` holds an `Order`, and only this module can make a `Validated` or an `Approved`
(their constructors demand a private seal): whatever publishes orders takes an `Approved`, so a
signal that skipped a check cannot become an order, by type rather than by convention.
"""

from __future__ import annotations

import dataclasses

from components.core import money
from components.core.events import Order, OrderType, Signal, TimeInForce
from components.risk.limits import Rejection, RejectReason

_SEAL = object()
STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)
WITH_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)


@dataclasses.dataclass(frozen=True, slots=True)
class Unchecked:
    """A signal as it arrives, with the time after which its answer is useless."""

    signal: Signal
    deadline_ns: int


@dataclasses.dataclass(frozen=True, slots=True)
class Validated:
    """A well-formed, timely signal for a symbol of the system: ready for the limits."""

    signal: Signal
    _seal: object = dataclasses.field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise TypeError("a Validated signal comes only from lifecycle.validate()")


@dataclasses.dataclass(frozen=True, slots=True)
class Approved:
    """A signal that passed every check, and the order it became."""

    signal: Signal
    order: Order
    _seal: object = dataclasses.field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise TypeError("an Approved signal comes only from lifecycle.approve()")


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    signal: Signal
    rejection: Rejection


@dataclasses.dataclass(frozen=True, slots=True)
class AlreadyApproved:
    """A retry of a signal approved before: the same order id, and no second order."""

    signal: Signal
    client_order_id: str


Decision = Approved | Rejected | AlreadyApproved


def validate(unchecked: Unchecked, symbols: frozenset[str], now_ns: int) -> Validated | Rejected:
    """Is the signal timely, for a known symbol, and usable as an order?"""
    signal = unchecked.signal
    if now_ns > unchecked.deadline_ns:
        late_ms = (now_ns - unchecked.deadline_ns) / 1e6
        return Rejected(
            signal,
            Rejection.of(
                RejectReason.REQUEST_EXPIRED, signal_id=signal.signal_id, late_ms=f"{late_ms:.1f}"
            ),
        )
    if signal.symbol not in symbols:
        return Rejected(signal, Rejection.of(RejectReason.UNKNOWN_SYMBOL, symbol=signal.symbol))
    problem = _problem(signal)
    if problem:
        return Rejected(
            signal,
            Rejection.of(RejectReason.INVALID_SIGNAL, symbol=signal.symbol, problem=problem),
        )
    return Validated(signal, _SEAL)


def approve(validated: Validated, client_order_id: str, now_ns: int) -> Approved:
    """The order a validated signal becomes once every limit let it pass."""
    signal = validated.signal
    order = Order(
        client_order_id=client_order_id,
        signal_id=signal.signal_id,
        symbol=signal.symbol,
        side=signal.side,
        quantity=signal.quantity,
        ts_event_ns=now_ns,
        ts_origin_ns=signal.ts_origin_ns,
        order_type=signal.order_type,
        limit_price=signal.limit_price,
        stop_price=signal.stop_price,
        time_in_force=signal.time_in_force,
    )
    return Approved(signal, order, _SEAL)


def _problem(signal: Signal) -> str:
    """What makes `signal` unusable as an order, or "" when nothing does."""
    if not signal.quantity.is_finite() or signal.quantity <= 0:
        return f"quantity must be > 0 (was {signal.quantity})"
    price = signal.limit_price
    if price is not None and (not price.is_finite() or price <= 0):
        return f"limit price must be > 0 (was {price})"
    stop = signal.stop_price
    if stop is not None and (not stop.is_finite() or stop <= 0):
        return f"stop price must be > 0 (was {stop})"
    # The position book is exact only inside these bounds: refuse here what it could not book.
    for bound in (
        money.out_of_bounds("quantity", signal.quantity, money.MAX_QUANTITY),
        price is not None and money.out_of_bounds("limit price", price, money.MAX_PRICE),
        stop is not None and money.out_of_bounds("stop price", stop, money.MAX_PRICE),
    ):
        if bound:
            return bound
    kind = signal.order_type
    if kind in WITH_LIMIT and price is None:
        return f"a {kind} order needs a limit price"
    if kind in STOPS:
        if stop is None:
            return f"a {kind} order needs a stop price"
        if signal.time_in_force is TimeInForce.IOC:
            # It would be canceled on arrival unless its stop had already traded.
            return f"a {kind} order cannot be IOC: it waits for its stop price"
    elif stop is not None:
        return f"a {kind} order takes no stop price (was {stop})"
    return ""
