"""What every venue offers the execution engine, and how a venue says a request failed.

A venue reports what happens to an order as `Report`s on its `reports` queue: the order's status
and its *cumulative* filled quantity and average price, plus the last execution when the report
is about one. Cumulative reports are what make fills exactly-once: the engine names each fill by
the cumulative quantity it reaches (`<client order id>:<filled quantity>`), so the same execution
learned twice (stream and polling, a duplicate, a report replayed after a restart) is one fill.

Required of a venue:

    submit(order)          send the order; returns the venue's acknowledgement
    get_order(client id)   what the venue knows of that order, or None if it has none
    cancel(client id)      ask the venue to cancel; the outcome arrives on `reports`
    open_orders()          every working order at the venue
    positions()            the venue's positions, shares by symbol
    ready() / close()      whether requests can be sent now / release connections and tasks
    register_metrics(r)    optional: put the venue's own metrics in the engine's registry

A failed request raises one of the errors below, which say whether retrying can help and whether
the venue may have acted on the request anyway:

    VenueError
    ├── RateLimited(VenueUnavailable)   429: not processed; retry after `retry_after_s`
    ├── VenueUnavailable(ConnectionError)  5xx or no connection: retry (the venue may have acted)
    ├── OutcomeUnknown(TimeoutError)    sent, no answer: ask the venue before sending again
    ├── DuplicateClientOrderId          the venue already has this client order id: it is there
    └── OrderRefused(ValueError)        403/422: permanent; retrying will not help
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import prometheus_client as prom

from components.core.errors import TradingSystemError
from components.core.events import BookSnapshot, Order, OrderStatus, Quote, Side, Trade


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """What a venue says about one order at one moment."""

    client_order_id: str
    venue_order_id: str | None
    symbol: str
    side: Side
    status: OrderStatus
    quantity: Decimal  # ordered
    filled_quantity: Decimal  # cumulative
    avg_fill_price: Decimal | None  # of everything filled so far
    ts_event_ns: int
    last_quantity: Decimal = Decimal(0)  # the execution this report is about, if any
    last_price: Decimal | None = None
    last_fee: Decimal = Decimal(0)
    reason: str = ""


class VenueError(TradingSystemError):
    """A request to a venue failed."""


class VenueUnavailable(VenueError, ConnectionError):
    """The venue could not take the request now (5xx, connection refused or dropped)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(VenueUnavailable):
    """429: the venue did not process the request; `retry_after_s` says when it will again."""


class OutcomeUnknown(VenueError, TimeoutError):
    """The request was sent and no answer came: the venue may or may not have acted on it."""


class DuplicateClientOrderId(VenueError):
    """The venue already holds an order under this client order id (sent before): it is there."""


class OrderRefused(VenueError, ValueError):
    """The venue refused the order for good (403, 422): `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Venue(abc.ABC):
    name: ClassVar[str]

    def __init__(self) -> None:
        self.reports: asyncio.Queue[Report] = asyncio.Queue()
        # The engine's rate limiter, awaited before any request the venue makes on its own
        # (polling), since the venue counts those against the same limit.
        self.pace: Callable[[], Awaitable[Any]] | None = None

    def keep_state_in(self, directory: Path) -> None:  # noqa: B027 (an optional hook)
        """Where a venue living in this process keeps what must outlive it (the simulated
        exchange's account); a real venue keeps its own, and ignores this."""

    async def start(self) -> None:  # noqa: B027 (an optional hook)
        """Connect whatever pushes reports (a stream); called once before the first request."""

    @abc.abstractmethod
    async def submit(self, order: Order) -> Report:
        """Send `order` under its client order id; return the venue's acknowledgement."""

    @abc.abstractmethod
    async def get_order(self, client_order_id: str) -> Report | None:
        """The venue's view of the order with this client order id, or None if it has none."""

    @abc.abstractmethod
    async def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel the order; its outcome arrives on `reports`."""

    @abc.abstractmethod
    async def open_orders(self) -> list[Report]:
        """Every order working at the venue."""

    @abc.abstractmethod
    async def positions(self) -> dict[str, Decimal]:
        """The venue's positions: signed shares by symbol."""

    def on_quote(self, quote: Quote) -> None:  # noqa: B027 (most real venues ignore our quotes)
        """The latest quote of a symbol, for venues that price orders themselves."""

    def on_trade(self, trade: Trade) -> None:  # noqa: B027 (as on_quote)
        """A trade printed on the market (a simulated queue moves with it)."""

    def on_book(self, book: BookSnapshot) -> None:  # noqa: B027 (as on_quote)
        """A symbol's whole book, for venues that fill against its levels."""

    def register_metrics(self, registry: prom.CollectorRegistry) -> None:  # noqa: B027
        """Count the venue's own doings (its stream, its polls) in the engine's registry."""

    def ready(self) -> bool:
        return True

    async def close(self) -> None:  # noqa: B027 (an optional hook)
        """Release what the venue holds."""
