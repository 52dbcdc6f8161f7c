"""Order books per symbol: snapshot + delta, the best `depth` levels of each side kept.

Each side is a dict price -> size and a sorted list of its prices (ascending for both sides, so
the best bid is the last and the best ask the first): an update of a known level is one dict
write, a new or removed level a bisect into at most `depth` prices. Pure logic: no I/O, no clock.

Validation rules (a rejected input changes nothing, and `apply` returns its `DropReason`):

- a price that is not finite and > 0, a size that is not finite and >= 0: `invalid_price` /
  `invalid_size`;
- a delta that would cross or lock the book (a bid at or above the best ask, an ask at or below
  the best bid): `crossed_book`. The book keeps its state; a venue's next snapshot repairs it;
- a delta removing (size 0) a level the book does not hold: `unknown_level`. Inside the kept depth
  that is a missed message; beyond it, a level we chose not to keep, so it is ignored silently;
- a snapshot that is crossed, or lists a price twice on one side: `crossed_book` / `malformed`.

A new level beyond the `depth` kept is not stored; one that enters the top evicts the worst.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal

from components.core.events import BookDelta, BookLevel, BookSnapshot, Side
from components.marketdata.validation import DropReason

DEPTH = 50
_ZERO = Decimal(0)


def _bad_price(price: Decimal) -> bool:
    return not price.is_finite() or price <= _ZERO


def _bad_size(size: Decimal) -> bool:
    return not size.is_finite() or size < _ZERO


class OrderBook:
    """One symbol's book; `apply_delta`/`apply_snapshot` return None, or why they refused."""

    __slots__ = ("_ask_prices", "_asks", "_bid_prices", "_bids", "depth", "symbol", "ts_event_ns")

    def __init__(self, symbol: str, depth: int = DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1 (was {depth})")
        self.symbol = symbol
        self.depth = depth
        self.ts_event_ns = 0
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: best bid last
        self._ask_prices: list[Decimal] = []  # ascending: best ask first

    # --- updates -------------------------------------------------------------------------------

    def apply(self, event: BookSnapshot | BookDelta) -> DropReason | None:
        if isinstance(event, BookDelta):
            return self.apply_delta(event.side is Side.BUY, event.price, event.size)
        return self.apply_snapshot(event)

    def apply_delta(self, is_bid: bool, price: Decimal, size: Decimal) -> DropReason | None:
        # Ordered for the common case, an update of a level the book holds: a held price was
        # checked when it entered, so membership vouches for it (a NaN never equals a key, and
        # a signalling NaN cannot even be hashed).
        if not size.is_finite() or size < _ZERO:
            return DropReason.INVALID_PRICE if _bad_price(price) else DropReason.INVALID_SIZE
        levels = self._bids if is_bid else self._asks
        try:
            held = price in levels
        except TypeError:
            return DropReason.INVALID_PRICE
        if held:
            if size:
                levels[price] = size  # the common case: one dict write
                return None
            del levels[price]
            prices = self._bid_prices if is_bid else self._ask_prices
            del prices[bisect_left(prices, price)]
            return None
        if _bad_price(price):
            return DropReason.INVALID_PRICE
        prices = self._bid_prices if is_bid else self._ask_prices
        if not size:
            # Removing a level we do not hold: a gap in the deltas if it would be inside the
            # kept depth, or just a level we chose not to keep.
            full = len(prices) >= self.depth
            beyond = full and (price < prices[0] if is_bid else price > prices[-1])
            return None if beyond else DropReason.UNKNOWN_LEVEL
        if is_bid:
            if self._ask_prices and price >= self._ask_prices[0]:
                return DropReason.CROSSED_BOOK
        elif self._bid_prices and price <= self._bid_prices[-1]:
            return DropReason.CROSSED_BOOK
        index = bisect_left(prices, price)
        if len(prices) >= self.depth:
            if is_bid:
                if index == 0:
                    return None  # below the lowest bid kept: outside the depth
                del levels[prices.pop(0)]
                index -= 1
            else:
                if index == len(prices):
                    return None  # above the highest ask kept
                del levels[prices.pop()]
        prices.insert(index, price)
        levels[price] = size
        return None

    def apply_snapshot(self, snapshot: BookSnapshot) -> DropReason | None:
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for side, levels in ((bids, snapshot.bids), (asks, snapshot.asks)):
            for level in levels:
                if _bad_price(level.price):
                    return DropReason.INVALID_PRICE
                if _bad_size(level.size):
                    return DropReason.INVALID_SIZE
                if level.price in side:
                    return DropReason.MALFORMED
                if level.size:
                    side[level.price] = level.size
        bid_prices = sorted(bids)[-self.depth :]
        ask_prices = sorted(asks)[: self.depth]
        if bid_prices and ask_prices and bid_prices[-1] >= ask_prices[0]:
            return DropReason.CROSSED_BOOK
        self._bid_prices, self._ask_prices = bid_prices, ask_prices
        self._bids = {price: bids[price] for price in bid_prices}
        self._asks = {price: asks[price] for price in ask_prices}
        self.ts_event_ns = snapshot.ts_event_ns
        return None

    # --- reading -------------------------------------------------------------------------------

    @property
    def best_bid(self) -> BookLevel | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return BookLevel(price, self._bids[price])

    @property
    def best_ask(self) -> BookLevel | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return BookLevel(price, self._asks[price])

    @property
    def mid(self) -> Decimal | None:
        if not self._bid_prices or not self._ask_prices:
            return None
        return (self._bid_prices[-1] + self._ask_prices[0]) / 2

    @property
    def spread(self) -> Decimal | None:
        if not self._bid_prices or not self._ask_prices:
            return None
        return self._ask_prices[0] - self._bid_prices[-1]

    def bids(self, levels: int | None = None) -> list[BookLevel]:
        """Best first."""
        prices = self._bid_prices[::-1][:levels]
        return [BookLevel(price, self._bids[price]) for price in prices]

    def asks(self, levels: int | None = None) -> list[BookLevel]:
        """Best first."""
        prices = self._ask_prices[:levels]
        return [BookLevel(price, self._asks[price]) for price in prices]

    def depth_size(self, levels: int | None = None) -> tuple[Decimal, Decimal]:
        """Total size on the bid and on the ask side over the best `levels` (all kept: None)."""
        bid = sum((self._bids[p] for p in self._bid_prices[::-1][:levels]), _ZERO)
        ask = sum((self._asks[p] for p in self._ask_prices[:levels]), _ZERO)
        return bid, ask

    def imbalance(self, levels: int | None = 5) -> Decimal | None:
        """(bid size - ask size) / (bid size + ask size) over the best `levels`: +1 all bids,
        -1 all asks; None when the book is empty."""
        bid, ask = self.depth_size(levels)
        total = bid + ask
        return (bid - ask) / total if total else None

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            symbol=self.symbol, bids=self.bids(), asks=self.asks(), ts_event_ns=self.ts_event_ns
        )

    def __len__(self) -> int:
        return len(self._bid_prices) + len(self._ask_prices)


class Books:
    """The books of every symbol, made on first use."""

    def __init__(self, depth: int = DEPTH) -> None:
        self.depth = depth
        self.books: dict[str, OrderBook] = {}

    def apply(self, event: BookSnapshot | BookDelta) -> DropReason | None:
        book = self.books.get(event.symbol)
        if book is None:
            book = self.books[event.symbol] = OrderBook(event.symbol, self.depth)
        reason = book.apply(event)
        if reason is None:
            book.ts_event_ns = event.ts_event_ns
        return reason

    def get(self, symbol: str) -> OrderBook | None:
        return self.books.get(symbol)
