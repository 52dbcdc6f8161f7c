"""The validation rules every market-data event passes before it is published, whatever its source.

An event is dropped, counted under a `DropReason` and logged when:

- a price is not a finite number > 0, or a size is negative (a trade's size must be > 0);
- a quote is crossed or locked (bid >= ask);
- a bar's high/low do not bracket its open and close, or its volume is negative;
- its symbol is not one the system trades;
- its event time is more than `max_future_s` ahead of the receive clock (a broken clock upstream);
- its event time is before the last one accepted for the same symbol and kind (time going
  backwards), or it equals an event already accepted at that same time (a duplicate).

The last two rules are also what makes failover safe: whichever feed an event came from, it goes
downstream only if it is newer than what went before for its symbol and kind, or new at the same
instant. So a switch between feeds can neither repeat nor reorder events.

Logging is bounded: the first `LOG_FIRST` drops of each reason are logged, then one in every
`LOG_EVERY` with the running count, so a flood of bad input cannot flood the logs. Duplicates are
recognised among the last `SAME_TIME_KEPT` events of the same instant.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Collection
from decimal import Decimal
from enum import StrEnum

from components.core.events import Bar, BookDelta, BookSnapshot, Quote, Trade

log = logging.getLogger(__name__)

LOG_FIRST = 10
LOG_EVERY = 1000
SAME_TIME_KEPT = 256  # events remembered at one instant per stream, to tell duplicates
_ZERO = Decimal(0)
_NS_PER_S = 1_000_000_000

MarketEvent = Trade | Quote | Bar | BookSnapshot | BookDelta


class DropReason(StrEnum):
    """Why input was skipped; the value is the `reason` label of the dropped-events metric."""

    MALFORMED = "malformed"
    OVERSIZE_FRAME = "oversize_frame"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_PRICE = "invalid_price"
    INVALID_SIZE = "invalid_size"
    INVALID_BAR = "invalid_bar"
    CROSSED_QUOTE = "crossed_quote"
    UNKNOWN_SYMBOL = "unknown_symbol"
    FUTURE_TIMESTAMP = "future_timestamp"
    TIME_BACKWARDS = "time_backwards"
    DUPLICATE = "duplicate"
    LATE_TRADE = "late_trade"
    BAR_REVISION = "bar_revision"
    CROSSED_BOOK = "crossed_book"
    UNKNOWN_LEVEL = "unknown_level"


class Drops:
    """Counts drops by reason, tells `on_drop` (the Prometheus counter) and logs, bounded."""

    def __init__(self, on_drop: Callable[[DropReason], None] | None = None) -> None:
        self.counts: collections.Counter[DropReason] = collections.Counter()
        self._on_drop = on_drop

    def __call__(self, reason: DropReason, detail: str) -> None:
        count = self.counts[reason] = self.counts[reason] + 1
        if self._on_drop is not None:
            self._on_drop(reason)
        if count <= LOG_FIRST or count % LOG_EVERY == 0:
            log.warning("Dropped market data (%s, %d so far): %s.", reason.value, count, detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _bad_price(price: Decimal) -> bool:
    return not price.is_finite() or price <= _ZERO


def _bad_size(size: Decimal) -> bool:
    return not size.is_finite() or size < _ZERO


def content_error(event: MarketEvent) -> tuple[DropReason, str] | None:
    """What is wrong with the event on its own (no history needed), or None."""
    if isinstance(event, Trade):
        if _bad_price(event.price):
            return DropReason.INVALID_PRICE, f"trade price {event.price} of {event.symbol}"
        if _bad_size(event.size) or event.size == _ZERO:
            return DropReason.INVALID_SIZE, f"trade size {event.size} of {event.symbol}"
    elif isinstance(event, Quote):
        if _bad_price(event.bid_price) or _bad_price(event.ask_price):
            return DropReason.INVALID_PRICE, (
                f"quote {event.bid_price}/{event.ask_price} of {event.symbol}"
            )
        if _bad_size(event.bid_size) or _bad_size(event.ask_size):
            return DropReason.INVALID_SIZE, (
                f"quote sizes {event.bid_size}/{event.ask_size} of {event.symbol}"
            )
        if event.bid_price >= event.ask_price:
            return DropReason.CROSSED_QUOTE, (
                f"bid {event.bid_price} >= ask {event.ask_price} for {event.symbol}"
            )
    elif isinstance(event, Bar):
        prices = (event.open, event.high, event.low, event.close)
        if any(_bad_price(p) for p in prices) or _bad_price(event.vwap):
            return DropReason.INVALID_PRICE, f"bar prices {prices} of {event.symbol}"
        if _bad_size(event.volume) or event.trade_count < 0:
            return DropReason.INVALID_SIZE, f"bar volume {event.volume} of {event.symbol}"
        if (
            not event.low
            <= min(event.open, event.close)
            <= max(event.open, event.close)
            <= (event.high)
            or event.ts_close_ns <= event.ts_open_ns
        ):
            return DropReason.INVALID_BAR, f"bar {prices} of {event.symbol} is inconsistent"
    elif isinstance(event, BookDelta):
        if _bad_price(event.price):
            return DropReason.INVALID_PRICE, f"book price {event.price} of {event.symbol}"
        if _bad_size(event.size):
            return DropReason.INVALID_SIZE, f"book size {event.size} of {event.symbol}"
    else:
        for level in (*event.bids, *event.asks):
            if _bad_price(level.price) or _bad_size(level.size):
                return DropReason.INVALID_PRICE, f"book level {level} of {event.symbol}"
    return None


def _time_of(event: MarketEvent) -> int:
    return event.ts_open_ns if isinstance(event, Bar) else event.ts_event_ns


def _stream_of(event: MarketEvent) -> tuple[str, str]:
    kind = type(event).__name__
    if isinstance(event, Bar):
        kind = f"Bar.{event.timeframe}"
    elif isinstance(event, BookSnapshot | BookDelta):
        kind = "Book"  # snapshots and deltas of a symbol form one ordered stream
    return kind, event.symbol


class Validator:
    """Applies the rules above; `accept(event, now_ns)` says whether the event may go on.

    `symbols=None` accepts every symbol. History is kept per symbol and kind: the last accepted
    time and the events accepted at exactly that time (to tell a duplicate from a second trade
    in the same nanosecond).
    """

    def __init__(
        self,
        symbols: Collection[str] | None,
        drops: Drops,
        *,
        max_future_s: float = 5.0,
    ) -> None:
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.drops = drops
        self.max_future_ns = int(max_future_s * _NS_PER_S)
        # (time, the event accepted at it) or, once a second one comes at the same instant,
        # (time, the events at it): the common case allocates no container.
        self._last: dict[
            tuple[str, str], tuple[int, MarketEvent | collections.deque[MarketEvent]]
        ] = {}

    def accept(self, event: MarketEvent, now_ns: int) -> bool:
        if self.symbols is not None and event.symbol not in self.symbols:
            self.drops(DropReason.UNKNOWN_SYMBOL, f"symbol {event.symbol!r} is not traded")
            return False
        problem = content_error(event)
        if problem is not None:
            self.drops(*problem)
            return False
        ts_ns = _time_of(event)
        if ts_ns - now_ns > self.max_future_ns:
            self.drops(
                DropReason.FUTURE_TIMESTAMP,
                f"{type(event).__name__} of {event.symbol} is {(ts_ns - now_ns) / 1e9:.3f} s "
                "ahead of the clock",
            )
            return False
        key = _stream_of(event)
        last = self._last.get(key)
        if last is None or ts_ns > last[0]:
            self._last[key] = (ts_ns, event)
            return True
        last_ns, at_last = last
        if ts_ns < last_ns:
            self.drops(
                DropReason.TIME_BACKWARDS,
                f"{key[0]} of {event.symbol} at {ts_ns} is before the last one at {last_ns}",
            )
            return False
        if isinstance(at_last, collections.deque):
            seen = event in at_last
        else:
            seen = event == at_last
            # Bounded: a flood at one instant must not make each check slower than the last.
            at_last = collections.deque((at_last,), maxlen=SAME_TIME_KEPT)
            self._last[key] = (ts_ns, at_last)
        if seen:
            self.drops(DropReason.DUPLICATE, f"{key[0]} of {event.symbol} at {ts_ns} seen already")
            return False
        at_last.append(event)
        return True
