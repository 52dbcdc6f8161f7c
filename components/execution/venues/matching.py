"""The simulated exchange's matching and fill model: a pure class with an injected clock.

No asyncio and no bus: a live run wraps it in `simulated.SimulatedExchange`, a backtest drives it
in-process on its own clock. Every call returns the `Report`s it produced, in order.

The model:
- An order reaches the book `latency_ms` after `submit` (`advance` moves time on); until then it
  can be canceled without ever trading.
- An order that takes liquidity trades against the latest book snapshot of its symbol if it has
  one, walking the levels, else against the quote (a buy at the ask, a sell at the bid), worsened
  by `slippage_bps` rounded to the tick. With `respect_quote_size` it takes at most the displayed
  size (a partial fill; the rest waits for later quotes, or is canceled if IOC); without, it fills
  completely at the top price.
- A limit order that is not marketable rests, at the back of the queue: the size displayed at its
  price when it arrived is ahead of it. Trades at its price use up that queue first, then fill it;
  an opposing quote at or through its price fills it at its limit (everyone ahead has traded).
- A stop order waits until a trade or quote reaches its stop price, then acts as a market (stop)
  or limit (stop-limit) order.
- The fee of a fill is `fee_per_order + fee_per_share x quantity + fee_rate x quantity x price`.
- Without a quote or book for its symbol an order is rejected.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from components.core.config import SimulatedVenueConfig
from components.core.events import (
    BookSnapshot,
    Order,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    Trade,
)
from components.execution.venues.base import DuplicateClientOrderId, Report

ZERO = Decimal(0)
BPS = Decimal(10_000)
WORKING = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
LIVE = WORKING | {OrderStatus.PENDING_NEW}
STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)
WITH_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)


@dataclasses.dataclass
class SimulatedOrder:
    order: Order
    venue_order_id: str
    arrives_at_ns: int
    status: OrderStatus = OrderStatus.PENDING_NEW
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    queue_ahead: Decimal = ZERO
    triggered: bool = False
    resting: bool = False  # on the book since an earlier moment: trades at its own price

    @property
    def remaining(self) -> Decimal:
        return self.order.quantity - self.filled

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


class MatchingEngine:
    """Orders, quotes, books and trades in; reports out. `clock()` is the time in ns."""

    name = "simulated"

    def __init__(
        self, config: SimulatedVenueConfig, clock: Callable[[], int], session: str = "0"
    ) -> None:
        self.config = config
        self.clock = clock
        self.orders: dict[str, SimulatedOrder] = {}  # by client order id, every order ever
        # The orders that may still trade, in arrival order: a quote is matched against these,
        # not against every order ever (a long backtest submits thousands).
        self._live: dict[str, SimulatedOrder] = {}
        self.quotes: dict[str, Quote] = {}
        self.books: dict[str, BookSnapshot] = {}
        self.positions: dict[str, Decimal] = {}
        self._pending: list[SimulatedOrder] = []  # submitted, not yet at the book
        self._session = session  # keeps venue ids unique across engines (restarts)
        self._ids = itertools.count(1)

    # --- requests -------------------------------------------------------------------------

    def submit(self, order: Order) -> list[Report]:
        if order.client_order_id in self.orders:
            raise DuplicateClientOrderId(f"client order id {order.client_order_id} is known")
        now = self.clock()
        sim = SimulatedOrder(
            order,
            f"sim-{self._session}-{next(self._ids)}",
            arrives_at_ns=now + int(self.config.latency_ms * 1_000_000),
        )
        self.orders[order.client_order_id] = sim
        self._live[order.client_order_id] = sim
        self._pending.append(sim)
        return self.advance()

    def cancel(self, client_order_id: str) -> list[Report]:
        sim = self.orders.get(client_order_id)
        if sim is None or sim.status not in LIVE:
            return []
        if sim in self._pending:
            self._pending.remove(sim)
        sim.status = OrderStatus.CANCELED
        return [self._report(sim, reason="canceled on request")]

    def get(self, client_order_id: str) -> Report | None:
        sim = self.orders.get(client_order_id)
        return None if sim is None else self._report(sim)

    def open_orders(self) -> list[Report]:
        return [self._report(sim) for sim in self._live_orders()]

    def _live_orders(self) -> list[SimulatedOrder]:
        """Orders pending or working, oldest first; finished ones leave the index here."""
        live = self._live
        for client_order_id in [c for c, sim in live.items() if sim.status not in LIVE]:
            del live[client_order_id]
        return list(live.values())

    def taker_price(self, symbol: str, side: Side) -> Decimal | None:
        """The price a market order of `side` would fill at now (the top level, slipped); None
        without a quote or book. A backtest sizes orders by it."""
        levels = self._opposing_levels(symbol, side)
        return self._slipped(levels[0][0], side) if levels else None

    def next_arrival_ns(self) -> int | None:
        return min((sim.arrives_at_ns for sim in self._pending), default=None)

    # --- time and market data -------------------------------------------------------------

    def advance(self) -> list[Report]:
        """Bring every order whose latency has passed to the book."""
        now = self.clock()
        arrived = [sim for sim in self._pending if sim.arrives_at_ns <= now]
        reports: list[Report] = []
        for sim in arrived:
            self._pending.remove(sim)
            reports += self._arrive(sim)
        return reports

    def on_quote(self, quote: Quote) -> list[Report]:
        self.quotes[quote.symbol] = quote
        self.books.pop(quote.symbol, None)  # the newer of the two prices orders
        return self._match(quote.symbol, trade=None)

    def on_book(self, book: BookSnapshot) -> list[Report]:
        self.books[book.symbol] = book
        return self._match(book.symbol, trade=None)

    def on_trade(self, trade: Trade) -> list[Report]:
        return self._match(trade.symbol, trade=trade)

    # --- matching -------------------------------------------------------------------------

    def _arrive(self, sim: SimulatedOrder) -> list[Report]:
        order = sim.order
        if order.symbol not in self.quotes and order.symbol not in self.books:
            sim.status = OrderStatus.REJECTED
            return [self._report(sim, reason=f"NO_QUOTE: symbol={order.symbol}")]
        sim.status = OrderStatus.NEW
        reports = [self._report(sim)]
        if order.order_type in STOPS:
            self._trigger(sim, self._last_price(order.symbol, order.side))
        elif order.order_type is OrderType.LIMIT:
            sim.queue_ahead = self._displayed_at(order)
        if sim.status in WORKING and self._is_active(sim):
            reports += self._take(sim)
        if sim.status in WORKING and order.time_in_force is TimeInForce.IOC:
            sim.status = OrderStatus.CANCELED
            reports.append(self._report(sim, reason="IOC: remainder canceled"))
        sim.resting = sim.status in WORKING and self._is_active(sim)
        return reports

    def _match(self, symbol: str, trade: Trade | None) -> list[Report]:
        reports: list[Report] = []
        for sim in self._live_orders():
            if sim.status not in WORKING or sim.order.symbol != symbol:
                continue
            if not sim.triggered and sim.order.order_type in STOPS:
                price = trade.price if trade else self._last_price(symbol, sim.order.side)
                self._trigger(sim, price)
                if sim.triggered:  # now a market or limit order: it takes what it can at once
                    reports += self._take(sim)
                    sim.resting = sim.status in WORKING
                continue
            if trade is not None and sim.order.order_type in (
                OrderType.LIMIT,
                OrderType.STOP_LIMIT,
            ):
                reports += self._queue_trade(sim, trade)
            elif trade is None:
                reports += self._take(sim)
        return reports

    def _is_active(self, sim: SimulatedOrder) -> bool:
        return sim.order.order_type in (OrderType.MARKET, OrderType.LIMIT) or sim.triggered

    def _trigger(self, sim: SimulatedOrder, price: Decimal | None) -> None:
        stop = sim.order.stop_price
        if stop is not None and price is not None:
            sim.triggered = price >= stop if sim.order.side is Side.BUY else price <= stop

    def _last_price(self, symbol: str, side: Side) -> Decimal | None:
        levels = self._opposing_levels(symbol, side)
        return levels[0][0] if levels else None

    def _opposing_levels(self, symbol: str, side: Side) -> list[tuple[Decimal, Decimal]]:
        """Price and size a `side` order can take, best first."""
        book = self.books.get(symbol)
        if book is not None:
            levels = book.asks if side is Side.BUY else book.bids
            return [(level.price, level.size) for level in levels]
        quote = self.quotes.get(symbol)
        if quote is None:
            return []
        if side is Side.BUY:
            return [(quote.ask_price, quote.ask_size)]
        return [(quote.bid_price, quote.bid_size)]

    def _displayed_at(self, order: Order) -> Decimal:
        """Size already resting at `order`'s limit on its own side: the queue ahead of it."""
        book = self.books.get(order.symbol)
        if book is not None:
            levels = book.bids if order.side is Side.BUY else book.asks
            return sum((lvl.size for lvl in levels if lvl.price == order.limit_price), ZERO)
        quote = self.quotes.get(order.symbol)
        if quote is None:
            return ZERO
        price, size = (
            (quote.bid_price, quote.bid_size)
            if order.side is Side.BUY
            else (quote.ask_price, quote.ask_size)
        )
        return size if price == order.limit_price else ZERO

    def _crosses(self, order: Order, price: Decimal) -> bool:
        if order.order_type in (OrderType.MARKET, OrderType.STOP):
            return True
        assert order.limit_price is not None
        return price <= order.limit_price if order.side is Side.BUY else price >= order.limit_price

    def _take(self, sim: SimulatedOrder) -> list[Report]:
        """Trade `sim` against the opposing side as far as its price and the sizes allow."""
        order = sim.order
        reports: list[Report] = []
        for price, size in self._opposing_levels(order.symbol, order.side):
            if sim.remaining <= 0 or not self._crosses(order, price):
                break
            if sim.resting and order.limit_price is not None:
                fill_price = order.limit_price  # a resting order trades at its own price (maker)
            else:
                fill_price = self._slipped(price, order.side)
            quantity = min(sim.remaining, size) if self.config.respect_quote_size else sim.remaining
            if quantity > 0:
                reports.append(self._fill(sim, quantity, fill_price))
        return reports

    def _queue_trade(self, sim: SimulatedOrder, trade: Trade) -> list[Report]:
        order = sim.order
        assert order.limit_price is not None
        at_or_through = (
            trade.price <= order.limit_price
            if order.side is Side.BUY
            else trade.price >= order.limit_price
        )
        if not at_or_through:
            return []
        size = trade.size
        if trade.price == order.limit_price:
            used = min(size, sim.queue_ahead)
            sim.queue_ahead -= used
            size -= used
        quantity = min(size, sim.remaining)
        return [self._fill(sim, quantity, order.limit_price)] if quantity > 0 else []

    def _slipped(self, price: Decimal, side: Side) -> Decimal:
        if not self.config.slippage_bps:
            return price
        tick = self.config.tick_size
        moved = price * (BPS + side.sign * self.config.slippage_bps) / BPS
        # Round away from the taker: slippage never rounds into a better price.
        rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
        return (moved / tick).quantize(Decimal(1), rounding=rounding) * tick

    def _fill(self, sim: SimulatedOrder, quantity: Decimal, price: Decimal) -> Report:
        sim.filled += quantity
        sim.notional += quantity * price
        sim.status = OrderStatus.FILLED if sim.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        symbol = sim.order.symbol
        self.positions[symbol] = self.positions.get(symbol, ZERO) + sim.order.side.sign * quantity
        return self._report(
            sim,
            last_quantity=quantity,
            last_price=price,
            last_fee=self.fee(quantity, price),
        )

    def fee(self, quantity: Decimal, price: Decimal) -> Decimal:
        """What filling `quantity` at `price` costs, exactly (no rounding)."""
        config = self.config
        return (
            config.fee_per_order
            + config.fee_per_share * quantity
            + config.fee_rate * quantity * price
        )

    def _report(
        self,
        sim: SimulatedOrder,
        *,
        last_quantity: Decimal = ZERO,
        last_price: Decimal | None = None,
        last_fee: Decimal = ZERO,
        reason: str = "",
    ) -> Report:
        order = sim.order
        return Report(
            client_order_id=order.client_order_id,
            venue_order_id=sim.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            status=sim.status,
            quantity=order.quantity,
            filled_quantity=sim.filled,
            avg_fill_price=sim.avg_price,
            ts_event_ns=self.clock(),
            last_quantity=last_quantity,
            last_price=last_price,
            last_fee=last_fee,
            reason=reason,
        )
