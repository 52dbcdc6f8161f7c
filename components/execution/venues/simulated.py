"""A simulated exchange that fills against the last quote, for local runs, tests and backtests.

An order arrives `latency_ms` after `submit`. Without a quote for its symbol it is rejected.
A market order fills completely at the quote (a buy at the ask, a sell at the bid); so does a
marketable limit order. A limit order that is not marketable rests, and fills at its limit price on
the first later quote that crosses it. Quote sizes are ignored. The fee of a fill is
`fee_per_order + fee_per_share x quantity + fee_rate x quantity x price`. Reports: `new`, then the
`Fill`, then `filled` (or `rejected`, or `canceled`).

The matching needs no event loop: `arrive` takes an order now and `on_quote` moves the market, and
`clock` stamps every report. The backtest drives it that way on its simulated clock, so a backtest
fills orders exactly as a local run does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from decimal import Decimal

from components.core.config import SimulatedVenueConfig
from components.core.events import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
)
from components.execution.venues.base import Venue

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Working:
    order: Order
    venue_order_id: str


class SimulatedExchange(Venue):
    name = "simulated"

    def __init__(
        self, config: SimulatedVenueConfig, clock: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__()
        self.config = config
        self.clock = clock  # nanoseconds since the epoch: wall time live, simulated in a backtest
        self.quotes: dict[str, Quote] = {}
        self.resting: dict[str, _Working] = {}  # by client order id
        self._in_flight: dict[str, tuple[Order, asyncio.Task[None]]] = {}
        # Venue ids (and the fill ids made from them) must stay unique across restarts.
        self._session = f"{clock() // 1_000_000:x}"
        self._ids = itertools.count(1)

    async def submit(self, order: Order) -> None:
        if self.config.latency_ms <= 0:
            self.arrive(order)
            return
        task = asyncio.create_task(self._arrive_later(order), name=f"sim.{order.client_order_id}")
        self._in_flight[order.client_order_id] = (order, task)

    async def _arrive_later(self, order: Order) -> None:
        await asyncio.sleep(self.config.latency_ms / 1000)
        del self._in_flight[order.client_order_id]
        self.arrive(order)

    def arrive(self, order: Order) -> None:
        """The order reaches the exchange now: it fills against the last quote, rests or is
        rejected; the reports are on `reports` when this returns."""
        quote = self.quotes.get(order.symbol)
        if quote is None:
            self._update(
                order, None, OrderStatus.REJECTED, reason=f"NO_QUOTE: symbol={order.symbol}"
            )
            return
        working = _Working(order, f"sim-{self._session}-{next(self._ids)}")
        self._update(order, working.venue_order_id, OrderStatus.NEW)
        price = self._execution_price(order, quote)
        if price is None:
            self.resting[order.client_order_id] = working
        else:
            self._fill(working, price)

    def on_quote(self, quote: Quote) -> None:
        self.quotes[quote.symbol] = quote
        for client_order_id, working in list(self.resting.items()):
            order = working.order
            if order.symbol != quote.symbol or self._execution_price(order, quote) is None:
                continue
            del self.resting[client_order_id]
            assert order.limit_price is not None
            self._fill(working, order.limit_price)  # a resting order is maker

    @staticmethod
    def _execution_price(order: Order, quote: Quote) -> Decimal | None:
        """The price `order` trades at against `quote` now, or None if it does not trade."""
        price = quote.ask_price if order.side is Side.BUY else quote.bid_price
        if order.order_type is OrderType.MARKET:
            return price
        assert order.limit_price is not None
        crosses = (
            price <= order.limit_price if order.side is Side.BUY else price >= order.limit_price
        )
        return price if crosses else None

    def fee(self, quantity: Decimal, price: Decimal) -> Decimal:
        """What filling `quantity` at `price` costs, exactly (no rounding)."""
        config = self.config
        return (
            config.fee_per_order
            + config.fee_per_share * quantity
            + config.fee_rate * quantity * price
        )

    def _fill(self, working: _Working, price: Decimal) -> None:
        order = working.order
        self.reports.put_nowait(
            Fill(
                fill_id=f"{working.venue_order_id}-1",
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=order.quantity,
                price=price,
                fee=self.fee(order.quantity, price),
                venue=self.name,
                ts_event_ns=self.clock(),  # when it filled, not when the quote was made
            )
        )
        self._update(
            order, working.venue_order_id, OrderStatus.FILLED, filled=order.quantity, price=price
        )

    def _update(
        self,
        order: Order,
        venue_order_id: str | None,
        status: OrderStatus,
        *,
        filled: Decimal = Decimal(0),
        price: Decimal | None = None,
        reason: str = "",
    ) -> None:
        self.reports.put_nowait(
            OrderUpdate(
                client_order_id=order.client_order_id,
                venue_order_id=venue_order_id,
                symbol=order.symbol,
                status=status,
                filled_quantity=filled,
                avg_fill_price=price,
                ts_event_ns=self.clock(),
                reason=reason,
            )
        )

    async def cancel_all(self) -> None:
        for order, task in self._in_flight.values():
            task.cancel()
            self._update(order, None, OrderStatus.CANCELED, reason="canceled on shutdown")
        self._in_flight.clear()
        for working in self.resting.values():
            order, venue_order_id = working.order, working.venue_order_id
            self._update(order, venue_order_id, OrderStatus.CANCELED, reason="canceled on shutdown")
        self.resting.clear()

    async def close(self) -> None:
        for _, task in self._in_flight.values():
            task.cancel()
        self._in_flight.clear()
