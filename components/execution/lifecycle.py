"""An order's lifecycle: the transitions a venue can really report, as data, and the one place
that turns venue reports into the `Fill`s and `OrderUpdate`s the engine publishes.

    pending_new ─► new ─► partially_filled ─► filled
         │          │            │
         │          └────────────┴─► pending_cancel ─► canceled
         └─► rejected, canceled, expired (also from new / partially_filled)

A report names the order's cumulative filled quantity. A fill is whatever takes that quantity
past what the order already had, named `<client order id>:<cumulative quantity>`: the same
execution reported twice (a duplicate, stream and polling, a replay after a restart) is one fill,
and an older report arriving after a newer one adds nothing. Fills are the venue's truth and are
applied in any state, also after a cancel request or a cancel acknowledgement (a late fill); only
the status obeys the table. A report that is behind the order (`new` after `filled`: venues
deliver out of order) is stale and ignored; any other status change the table does not list is
refused (logged and counted by the caller), never applied.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from components.core.events import Fill, Order, OrderStatus, OrderUpdate
from components.execution.venues.base import Report

S = OrderStatus
ZERO = Decimal(0)
TERMINAL = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
FILL_STATUSES = frozenset({S.PARTIALLY_FILLED, S.FILLED})
# How far along the lifecycle a status is: a report behind the order, adding no fill, is stale.
PROGRESS = {S.PENDING_NEW: 0, S.NEW: 1, S.PARTIALLY_FILLED: 2, S.PENDING_CANCEL: 3} | dict.fromkeys(
    TERMINAL, 4
)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # The first report may already be a fill or a cancel: the venue's `new` can come later, or
    # never (an order that fills at once on some venues), or arrive out of order.
    S.PENDING_NEW: frozenset(
        {S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.REJECTED, S.EXPIRED}
    ),
    # A venue may reject an order it had accepted (Alpaca: `accepted` then `rejected`).
    S.NEW: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED, S.REJECTED}
    ),
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}
    ),
    # A fill can beat the cancel (the order fills while the cancel is on its way).
    S.PENDING_CANCEL: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    # A late fill after the cancel was acknowledged that completes the order makes it filled.
    S.CANCELED: frozenset({S.FILLED}),
    S.EXPIRED: frozenset({S.FILLED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
}


class InvalidTransition(ValueError):
    """A report would move an order along a transition no venue can make."""

    def __init__(self, client_order_id: str, current: OrderStatus, reported: OrderStatus) -> None:
        super().__init__(f"order {client_order_id}: {current} cannot become {reported}")
        self.current = current
        self.reported = reported


class InvalidReport(ValueError):
    """A venue report that cannot be applied: a fill without a usable price, or a quantity that
    is not a finite number."""


@dataclasses.dataclass
class Outcome:
    """What one report changed: a new fill to publish, a status update to publish, or neither.
    `stale`: the report was behind the order (out of order, or a duplicate), and ignored;
    `refused`: the transition it asked for is impossible, and was not applied."""

    fill: Fill | None = None
    update: OrderUpdate | None = None
    stale: bool = False
    refused: InvalidTransition | None = None


@dataclasses.dataclass
class OrderState:
    order: Order
    venue: str
    status: OrderStatus = S.PENDING_NEW
    venue_order_id: str | None = None
    filled: Decimal = ZERO
    notional: Decimal = ZERO  # sum of quantity x price over the fills
    fees: Decimal = ZERO
    fills: list[Fill] = dataclasses.field(default_factory=list)
    reason: str = ""
    arrival_mid: Decimal | None = None  # the mid when the order arrived: slippage's reference
    expected_slippage_bps: float | None = None

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None

    def apply(self, report: Report) -> Outcome:
        """Take one venue report: the fill it adds, the status it moves to.
        `InvalidReport` (nothing applied) when it cannot be taken."""
        self._check(report)
        outcome = Outcome()
        if report.venue_order_id and not self.venue_order_id:
            self.venue_order_id = report.venue_order_id
        if report.filled_quantity > self.filled:
            outcome.fill = self._fill_from(report)
        status = self._status_after(report.status)
        if status is self.status or (
            outcome.fill is None and PROGRESS[status] < PROGRESS[self.status]
        ):
            outcome.stale = status is not self.status or outcome.fill is None
            if outcome.fill is not None:
                outcome.update = self.update(report.ts_event_ns)
            return outcome
        if status not in TRANSITIONS[self.status]:
            outcome.refused = InvalidTransition(self.client_order_id, self.status, status)
            if outcome.fill is not None:
                outcome.update = self.update(report.ts_event_ns)
            return outcome
        self.status = status
        self.reason = report.reason
        outcome.update = self.update(report.ts_event_ns)
        return outcome

    def _check(self, report: Report) -> None:
        if not report.filled_quantity.is_finite() or report.filled_quantity < 0:
            raise InvalidReport(f"order {self.client_order_id}: filled {report.filled_quantity}")
        if report.filled_quantity <= self.filled:
            return
        quantity = report.filled_quantity - self.filled
        exact = report.last_price is not None and report.last_quantity == quantity
        price = report.last_price if exact else report.avg_fill_price
        if price is None or not price.is_finite() or price <= 0:
            raise InvalidReport(
                f"order {self.client_order_id}: filled {report.filled_quantity} without a "
                f"usable price (last {report.last_price}, average {report.avg_fill_price})"
            )

    def _status_after(self, reported: OrderStatus) -> OrderStatus:
        """The status a report leads to. Fill statuses follow the filled quantity, so that a
        fill after a cancel request or acknowledgement leaves the order pending cancel or
        canceled unless it completes the order."""
        if reported not in FILL_STATUSES:
            return reported
        if self.filled >= self.order.quantity:
            return S.FILLED
        if self.status in (S.PENDING_CANCEL, S.CANCELED, S.EXPIRED):
            return self.status
        return S.PARTIALLY_FILLED if self.filled > 0 else reported

    def _fill_from(self, report: Report) -> Fill:
        quantity = report.filled_quantity - self.filled
        if report.last_price is not None and report.last_quantity == quantity:
            price, fee = report.last_price, report.last_fee
        else:
            # Executions were missed (a gap in the stream, a restart): the venue's average over
            # everything filled gives the price of what we had not seen (`_check` made sure).
            assert report.avg_fill_price is not None
            price = (report.avg_fill_price * report.filled_quantity - self.notional) / quantity
            fee = report.last_fee if report.last_quantity == quantity else ZERO
        self.filled = report.filled_quantity
        self.notional += quantity * price
        self.fees += fee
        fill = Fill(
            fill_id=f"{self.client_order_id}:{report.filled_quantity}",
            client_order_id=self.client_order_id,
            symbol=self.order.symbol,
            side=self.order.side,
            quantity=quantity,
            price=price,
            fee=fee,
            venue=self.venue,
            ts_event_ns=report.ts_event_ns,
        )
        self.fills.append(fill)
        return fill

    @property
    def fill_ids(self) -> list[str]:
        return [fill.fill_id for fill in self.fills]

    def force(self, status: OrderStatus, reason: str, ts_event_ns: int) -> OrderUpdate:
        """Set a status the engine decided itself (refused before sending, gone from the venue)."""
        self.status = status
        self.reason = reason
        return self.update(ts_event_ns)

    def update(self, ts_event_ns: int) -> OrderUpdate:
        return OrderUpdate(
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            symbol=self.order.symbol,
            status=self.status,
            filled_quantity=self.filled,
            avg_fill_price=self.avg_price,
            ts_event_ns=ts_event_ns,
            reason=self.reason,
        )

    def restore_update(self, update: OrderUpdate) -> None:
        """Replay a logged update (the log holds only what was applied)."""
        self.status = update.status
        self.reason = update.reason
        self.venue_order_id = update.venue_order_id or self.venue_order_id

    def restore_fill(self, fill: Fill) -> None:
        """Replay a logged fill."""
        if fill.fill_id in self.fill_ids:
            return
        self.fills.append(fill)
        self.filled += fill.quantity
        self.notional += fill.quantity * fill.price
        self.fees += fill.fee
