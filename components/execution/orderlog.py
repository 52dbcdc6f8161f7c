"""The execution engine's order log: every order before it reaches the venue, and what became of it.

It is what makes "never sent twice" hold across restarts: an order is appended (and fsynced)
before its first attempt, under the client order id every retry reuses; on restart every id in
the log counts as already handled (a re-delivered `Order` is dropped), and every order that was
not terminal is reconciled with the venue by that id before new orders are accepted. A crash
between the append and the send loses that order rather than risking a second copy: the venue
does not know it, and reconciliation closes it.

Records are JSON, framed, checked and fsynced by `runtime.journal` (which also says what happens
to a torn or damaged line), like the risk manager's state log. Replaying them gives each order's
`lifecycle.OrderState`: status, venue id, fills; `tradingsystem state` shows them.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from components.core.events import Fill, Order, OrderUpdate
from components.execution import algos, lifecycle
from components.runtime import journal

ORDER_LOG_NAME = "orders.log"
TERMINAL = lifecycle.TERMINAL


class OrderReceived(journal.Record, tag="order_received"):
    """Written before the order goes to the venue (or is refused): its id is now spent."""

    order: Order
    trace_id: str
    venue: str = ""
    arrival_mid: Decimal | None = None
    expected_slippage_bps: float | None = None


class OrderUpdated(journal.Record, tag="order_updated"):
    update: OrderUpdate


class OrderFilled(journal.Record, tag="order_filled"):
    fill: Fill


class FillConfirmed(journal.Record, tag="fill_confirmed"):
    """The risk manager booked the fill: it need not be sent again."""

    fill_id: str


class ParentStarted(journal.Record, tag="parent_started"):
    """An order is worked by an algorithm (TWAP, VWAP) as these slices."""

    parent_id: str
    kind: str
    slices: list[algos.Slice]


class SliceSent(journal.Record, tag="slice_sent"):
    """A slice's child went to the risk manager: approved as `client_order_id`, or not."""

    parent_id: str
    index: int
    approved: bool
    client_order_id: str | None = None
    reason: str = ""


Record = OrderReceived | OrderUpdated | OrderFilled | FillConfirmed | ParentStarted | SliceSent


@dataclasses.dataclass
class Parent:
    """An order worked by an algorithm, and what became of its slices so far."""

    kind: str
    slices: list[algos.Slice]
    sent: dict[int, SliceSent] = dataclasses.field(default_factory=dict)

    @property
    def done(self) -> bool:
        return all(part.index in self.sent for part in self.slices)


@dataclasses.dataclass
class Orders:
    """What the log says: every order with its state and fills, and the fills the risk manager
    has not confirmed yet."""

    states: dict[str, lifecycle.OrderState] = dataclasses.field(default_factory=dict)
    unconfirmed: dict[str, Fill] = dataclasses.field(default_factory=dict)
    traces: dict[str, str] = dataclasses.field(default_factory=dict)
    parents: dict[str, Parent] = dataclasses.field(default_factory=dict)
    torn_lines: int = 0

    @property
    def known(self) -> set[str]:
        """Every client order id ever handled: none may be used again."""
        return set(self.states)

    @property
    def open(self) -> dict[str, Order]:
        """Orders not terminal yet, by client order id."""
        return {cid: state.order for cid, state in self.states.items() if not state.terminal}

    def apply(self, record: Record) -> None:
        if isinstance(record, OrderReceived):
            order = record.order
            self.states[order.client_order_id] = lifecycle.OrderState(
                order,
                record.venue,
                arrival_mid=record.arrival_mid,
                expected_slippage_bps=record.expected_slippage_bps,
            )
            self.traces[order.client_order_id] = record.trace_id
        elif isinstance(record, OrderUpdated):
            state = self.states.get(record.update.client_order_id)
            if state is not None:
                state.restore_update(record.update)
        elif isinstance(record, OrderFilled):
            state = self.states.get(record.fill.client_order_id)
            if state is not None:
                state.restore_fill(record.fill)
            self.unconfirmed[record.fill.fill_id] = record.fill
        elif isinstance(record, FillConfirmed):
            self.unconfirmed.pop(record.fill_id, None)
        elif isinstance(record, ParentStarted):
            self.parents[record.parent_id] = Parent(record.kind, list(record.slices))
        elif isinstance(record, SliceSent):
            parent = self.parents.get(record.parent_id)
            if parent is not None:
                parent.sent[record.index] = record


def read(path: Path) -> journal.Replay[Record]:
    """Every record of the order log at `path` (a missing file has none)."""
    return OrderLog.read(path)


def load(path: Path) -> Orders:
    """What the order log at `path` says, read only (for `tradingsystem state`)."""
    replay = read(path)
    orders = Orders(torn_lines=replay.torn_lines)
    for record in replay:
        orders.apply(record)
    return orders


class OrderLog(journal.Journal[Record]):
    """The execution engine's order log: append an order before it is sent."""

    record_type = Record

    @classmethod
    def restore(cls, path: Path) -> tuple[OrderLog, Orders]:
        """Open the log at `path` (cutting off a torn tail) and what its records say."""
        order_log, replay = cls.open(path)
        orders = Orders(torn_lines=replay.torn_lines)
        for record in replay:
            orders.apply(record)
        return order_log, orders
