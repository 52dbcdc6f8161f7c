"""What the risk manager's state log holds: one record per change of its state, and snapshots.

Every record carries `seq`, its place in the log (1, 2, 3, ...), so that replay can skip what a
snapshot already holds and notice a missing record. Logs written before sequences existed hold
`seq=0`; replay numbers those in order.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from components.core.events import BreakerState, Fill, Order, OrderStatus
from components.runtime import journal


class Sequenced(journal.Record, kw_only=True):
    seq: int = 0


class LogOpened(Sequenced, tag="log_opened"):
    """The first record: the account's starting cash, which later config changes do not alter."""

    system: str
    initial_cash: Decimal


class OrderApproved(Sequenced, tag="order_approved"):
    order: Order


class OrderAcknowledged(Sequenced, tag="order_acknowledged"):
    client_order_id: str


class OrderClosed(Sequenced, tag="order_closed"):
    """The order is over (filled, rejected, canceled, expired): it holds no more exposure."""

    client_order_id: str
    status: OrderStatus
    reason: str = ""


class FillApplied(Sequenced, tag="fill_applied"):
    fill: Fill


class SessionStarted(Sequenced, tag="session_started"):
    """A new trading session: daily P&L counts from `start_equity` on."""

    session: str
    start_equity: Decimal


class BreakerChanged(Sequenced, tag="breaker_changed"):
    """A transition of the circuit breaker, logged before it takes effect."""

    state: BreakerState
    trigger: str
    reason: str
    session: str = ""  # the session it happened in (a daily-loss trip holds through it)


class StopPeakMoved(Sequenced, tag="stop_peak"):
    """The best price since entry of the position in `symbol` (long: the highest bid, short: the
    lowest ask), which its trailing stop trails from. Logged when it has moved a step (see
    `risk.stops`), not on every quote; a fill that closes or flips the position drops it."""

    symbol: str
    long: bool
    price: Decimal


Record = (
    LogOpened
    | OrderApproved
    | OrderAcknowledged
    | OrderClosed
    | FillApplied
    | SessionStarted
    | BreakerChanged
    | StopPeakMoved
)


# --- snapshots ------------------------------------------------------------------------------


class HoldingSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    quantity: Decimal
    cost: Decimal  # as shown; the exact fractions follow
    realized_pnl: Decimal
    fees: Decimal
    # "numerator/denominator"; empty in snapshots written before the book kept exact ratios,
    # whose cost and realized P&L were Decimals rounded to 1e-10 and are read as such.
    exact_cost: str = ""
    exact_realized_pnl: str = ""


class ApprovalSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    order: Order
    ts_approved_ns: int
    acknowledged: bool
    filled_quantity: Decimal


class BreakerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    state: BreakerState
    trigger: str
    reason: str
    since_ns: int
    session: str
    history: list[BreakerChanged]


class Snapshot(journal.Record, kw_only=True, tag="snapshot"):
    """The whole logged state after record `seq`: restart reads it, then the records after it."""

    seq: int
    last_logged_ns: int
    opened: bool
    initial_cash: Decimal
    cash: Decimal
    fill_count: int
    holdings: list[HoldingSnapshot]
    approvals: list[ApprovalSnapshot]
    signals: dict[str, str]
    fill_ids: list[str]
    session: str
    session_start_equity: Decimal | None
    breaker: BreakerSnapshot
    # Last: snapshots written before trailing-stop peaks were logged have none.
    stop_peaks: list[StopPeakMoved] = msgspec.field(default_factory=list)
