"""The domain events and commands that travel between components, as msgspec structs.

Data are nouns (`Trade`, `Quote`, `Bar`), events past tense (`SignalChecked`), commands imperative
(`CheckSignal`). Prices, sizes and money are `Decimal`; msgspec carries them as strings, so they
cross the wire exactly. Times are integers in nanoseconds since the Unix epoch (`ts_*_ns`).

Every struct is tagged with its class name, so `Payload` can be decoded without knowing the topic.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"  # a market order once the stop price trades
    STOP_LIMIT = "stop_limit"  # a limit order once the stop price trades


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"  # good till canceled
    IOC = "ioc"  # immediate or cancel: what does not fill at once is canceled


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class _Event(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Base of every payload: immutable, tagged by class name, fields by keyword."""


# --- market data ---------------------------------------------------------------------------


class Trade(_Event):
    symbol: str
    price: Decimal
    size: Decimal
    ts_event_ns: int


class Quote(_Event):
    symbol: str
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal
    ts_event_ns: int

    @property
    def mid(self) -> Decimal:
        return (self.bid_price + self.ask_price) / 2


class Bar(_Event):
    """OHLCV over [ts_open_ns, ts_close_ns); `timeframe` is its name, e.g. `1s`."""

    symbol: str
    timeframe: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    vwap: Decimal
    trade_count: int
    ts_open_ns: int
    ts_close_ns: int


class BookLevel(msgspec.Struct, frozen=True, array_like=True, gc=False):
    price: Decimal
    size: Decimal


class BookSnapshot(_Event):
    symbol: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    ts_event_ns: int


class BookDelta(_Event):
    """One level changed; a size of zero removes the level."""

    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    ts_event_ns: int


# --- signals and risk -----------------------------------------------------------------------


class Signal(_Event):
    """A strategy's wish to trade. Only the risk manager turns it into an `Order`.

    `ts_origin_ns` is when the market-data message that caused it was sent: the start of the
    tick-to-order latency.
    """

    signal_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    ts_event_ns: int
    ts_origin_ns: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    reason: str = ""
    # Last and optional, so that older peers' signals still decode (as market/limit, day).
    stop_price: Decimal | None = None  # stop and stop_limit orders: where they trigger
    time_in_force: TimeInForce = TimeInForce.DAY


class CheckSignal(_Event):
    """Request to the risk manager: approve or reject `signal`. Stale after `deadline_ns`."""

    signal: Signal
    deadline_ns: int


class SignalChecked(_Event):
    """The risk manager's reply. `client_order_id` is set when approved; `reason` when rejected."""

    signal_id: str
    approved: bool
    reason: str = ""
    client_order_id: str | None = None


class Position(_Event):
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    ts_event_ns: int


class RiskState(_Event):
    """The risk manager's view, published on `risk.state` on every breaker change and
    periodically. `breaker` is the one source of truth for halting (execution, operator)."""

    breaker: BreakerState
    halted_reason: str
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    positions: list[Position]
    ts_event_ns: int
    breaker_reason: str = ""
    breaker_since_ns: int = 0
    daily_pnl: Decimal = Decimal(0)
    unrealized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    open_orders: int = 0
    last_sequence: int = 0
    # The approved orders the risk manager still counts as pending: execution re-publishes the
    # terminal update of one it knows is over (sent while the risk manager was restarting).
    open_order_ids: list[str] = msgspec.field(default_factory=list)


# --- orders and fills -----------------------------------------------------------------------


class Order(_Event):
    """An order the risk manager approved; execution sends it to the venue once, by its id."""

    client_order_id: str
    signal_id: str
    symbol: str
    side: Side
    quantity: Decimal
    ts_event_ns: int
    ts_origin_ns: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


class OrderUpdate(_Event):
    """A step of an order's lifecycle, as the venue reported it."""

    client_order_id: str
    venue_order_id: str | None
    symbol: str
    status: OrderStatus
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    ts_event_ns: int
    reason: str = ""


class Fill(_Event):
    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    venue: str
    ts_event_ns: int


class FillBooked(_Event):
    """The risk manager has booked this fill (logged and fsynced): execution stops re-sending it.

    Fills travel by publish/subscribe, which drops what nobody is connected to receive; so
    execution re-sends every fill until it sees this, and the risk manager books a fill id once.
    """

    fill_id: str
    client_order_id: str
    ts_event_ns: int


class PositionDrifted(_Event):
    """After reconciling its orders with the venue, the execution engine's position in `symbol`
    (from the fills it logged) still differs from the venue's own. Published on every pass while
    it lasts; the risk manager trips its breaker under `execution.drift_policy: halt`."""

    symbol: str
    ours: Decimal
    venue_position: Decimal
    venue: str
    ts_event_ns: int


class Heartbeat(_Event):
    """Sent by the broker so that subscribers can tell a quiet market from a dead path."""

    ts_event_ns: int


Payload = (
    Trade
    | Quote
    | Bar
    | BookSnapshot
    | BookDelta
    | Signal
    | CheckSignal
    | SignalChecked
    | Position
    | RiskState
    | Order
    | OrderUpdate
    | Fill
    | FillBooked
    | PositionDrifted
    | Heartbeat
)
