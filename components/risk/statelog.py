"""The risk manager's state log: an append-only file that its state is rebuilt from on restart.

Each record is written and fsynced before the event it records is acted on: an approval before
the reply and the `Order` leave, a fill before it changes the position book. So whatever the
risk manager ever said or did is on disk, and replaying the log gives back the same positions,
cash and open approvals.

Records are JSON objects (Decimal as strings) tagged by their `record` field, framed, checked
and fsynced by `runtime.journal`, which also says what happens to a torn or damaged line.

`load_book(data_dir, initial_cash)` is the offline reader (`tradingsystem run`'s summary).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from components.core.events import Fill, Order, OrderStatus
from components.risk.positions import PositionBook
from components.runtime import journal

STATE_LOG_NAME = "state.log"
ZERO = Decimal(0)


class LogOpened(journal.Record, tag="log_opened"):
    """The first record: the account's starting cash, which later config changes do not alter."""

    system: str
    initial_cash: Decimal


class OrderApproved(journal.Record, tag="order_approved"):
    order: Order


class OrderAcknowledged(journal.Record, tag="order_acknowledged"):
    client_order_id: str


class OrderClosed(journal.Record, tag="order_closed"):
    """The order is over (filled, rejected, canceled, expired): it holds no more exposure."""

    client_order_id: str
    status: OrderStatus
    reason: str = ""


class FillApplied(journal.Record, tag="fill_applied"):
    fill: Fill


Record = LogOpened | OrderApproved | OrderAcknowledged | OrderClosed | FillApplied


def read(path: Path) -> journal.Replay[Record]:
    """Every record of the state log at `path` (a missing file has none)."""
    return StateLog.read(path)


class StateLog(journal.Journal[Record]):
    """The risk manager's state log: append a record before acting on what it records."""

    record_type = Record


@dataclasses.dataclass
class Approval:
    """An order approved by the risk manager whose exposure counts until it fills or closes."""

    order: Order
    ts_approved_ns: int
    acknowledged: bool = False
    filled_quantity: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return max(self.order.quantity - self.filled_quantity, ZERO)


class LoggedState:
    """The state the log records, changed only by `apply`, live and on replay alike."""

    def __init__(self, initial_cash: Decimal) -> None:
        self.book = PositionBook(initial_cash)
        self.approvals: dict[str, Approval] = {}  # open ones, by client order id
        self.signals: dict[str, str] = {}  # signal id -> client order id, of every approval
        self.fill_ids: set[str] = set()
        self.opened = False

    def apply(self, record: Record) -> None:
        match record:
            case LogOpened(initial_cash=cash):
                if not self.opened:
                    self.book = PositionBook(cash)
                self.opened = True
            case OrderApproved(order=order):
                self.approvals[order.client_order_id] = Approval(order, record.ts_logged_ns)
                self.signals[order.signal_id] = order.client_order_id
            case OrderAcknowledged(client_order_id=client_order_id):
                approval = self.approvals.get(client_order_id)
                if approval is not None:
                    approval.acknowledged = True
            case OrderClosed(client_order_id=client_order_id):
                self.approvals.pop(client_order_id, None)
            case FillApplied(fill=fill):
                self.book.apply_fill(fill)
                self.fill_ids.add(fill.fill_id)
                approval = self.approvals.get(fill.client_order_id)
                if approval is not None:
                    approval.acknowledged = True  # a fill proves execution has the order
                    approval.filled_quantity += fill.quantity
                    if approval.remaining == 0:
                        del self.approvals[fill.client_order_id]


def replay(records: Iterable[Record], initial_cash: Decimal) -> LoggedState:
    state = LoggedState(initial_cash)
    for record in records:
        state.apply(record)
    return state


def load_book(data_dir: Path, initial_cash: Decimal) -> PositionBook:
    """The position book held in the risk manager's state log under `data_dir`.

    `data_dir` is the risk manager's own data directory (its `TS_DATA_DIR`, e.g. `var/risk`);
    `initial_cash` applies only when the log does not record one (no log yet: an empty book).
    Raises `core.errors.CorruptLogError` when a line before the last is damaged.
    """
    return replay(read(Path(data_dir) / STATE_LOG_NAME), initial_cash).book
