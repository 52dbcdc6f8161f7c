"""The execution engine's order log: every order before it reaches the venue, and what became of it.

It is what makes "never sent twice" hold across restarts: an order is appended (and fsynced)
before it is sent, and on restart every client order id in the log counts as already handled, so
a re-delivered `Order` is dropped. A crash between the append and the send loses that order
rather than risking a second copy; the risk manager then expires its approval.

Records are JSON, framed, checked and fsynced by `runtime.journal` (which also says what happens
to a torn or damaged line), like the risk manager's state log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from components.core.events import Fill, Order, OrderStatus, OrderUpdate
from components.runtime import journal

ORDER_LOG_NAME = "orders.log"
TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class OrderReceived(journal.Record, tag="order_received"):
    """Written before the order goes to the venue (or is refused): its id is now spent."""

    order: Order
    trace_id: str


class OrderUpdated(journal.Record, tag="order_updated"):
    update: OrderUpdate


class OrderFilled(journal.Record, tag="order_filled"):
    fill: Fill


class FillConfirmed(journal.Record, tag="fill_confirmed"):
    """The risk manager booked the fill: it need not be sent again."""

    fill_id: str


Record = OrderReceived | OrderUpdated | OrderFilled | FillConfirmed


@dataclasses.dataclass
class Orders:
    """What the log says: every client order id handled, those not yet terminal, and the fills
    the risk manager has not confirmed yet."""

    known: set[str] = dataclasses.field(default_factory=set)
    open: dict[str, Order] = dataclasses.field(default_factory=dict)
    unconfirmed: dict[str, Fill] = dataclasses.field(default_factory=dict)
    torn_lines: int = 0

    def apply(self, record: Record) -> None:
        if isinstance(record, OrderReceived):
            self.known.add(record.order.client_order_id)
            self.open[record.order.client_order_id] = record.order
        elif isinstance(record, OrderUpdated):
            self.known.add(record.update.client_order_id)
            if record.update.status in TERMINAL:
                self.open.pop(record.update.client_order_id, None)
        elif isinstance(record, OrderFilled):
            self.unconfirmed[record.fill.fill_id] = record.fill
        elif isinstance(record, FillConfirmed):
            self.unconfirmed.pop(record.fill_id, None)


def read(path: Path) -> journal.Replay[Record]:
    """Every record of the order log at `path` (a missing file has none)."""
    return OrderLog.read(path)


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
