"""A seeded random walk of quotes and trades, for demos and tests that need no data file.

Each symbol walks on its own random generator, seeded from the config's seed and a CRC-32 of the
symbol (never `hash()`, which is salted per process), so the same seed gives the same prices in
every process and adding a symbol does not change the others. Prices move in whole ticks and
become `Decimal` only at the end, so every price lies exactly on the tick grid. Only the size of a
step is drawn as a float; the price itself is never one.

With `book_levels`, each step also sends the symbol's order book as `BookDelta`s: `book_levels`
levels a side, from the quote's bid down and its ask up, one tick apart, random sizes. Levels that
left the book are removed first (size 0), so the book is never crossed between two deltas.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from components.core.config import SyntheticFeedConfig
from components.core.events import BookDelta, Quote, Side, Trade

# Trade sizes, weighted towards round lots as on a real tape.
_TRADE_SIZES = (1, 5, 10, 25, 50, 100, 100, 100, 200, 300, 500)


def symbol_seed(seed: int, symbol: str) -> int:
    """A per-symbol seed that is the same in every process."""
    return (seed << 32) ^ zlib.crc32(symbol.encode())


class _Walk:
    """One symbol's mid price, in ticks, and the generator that moves it."""

    def __init__(self, config: SyntheticFeedConfig, symbol: str) -> None:
        self.symbol = symbol
        self._tick = config.tick_size
        self._rng = random.Random(symbol_seed(config.seed, symbol))
        self._volatility = config.volatility_bps / 10_000
        self._spread = config.spread_bps / 10_000
        ticks = (config.initial_price / config.tick_size).to_integral_value(ROUND_HALF_EVEN)
        self._mid_ticks = max(1, int(ticks))
        self._levels = config.book_levels
        self._book: dict[bool, set[int]] = {True: set(), False: set()}  # is_bid -> price ticks

    def step(self, ts_event_ns: int) -> list[Quote | Trade | BookDelta]:
        rng = self._rng
        move = round(rng.gauss(0.0, self._mid_ticks * self._volatility))
        self._mid_ticks = max(1, self._mid_ticks + move)
        spread_ticks = max(1, round(self._mid_ticks * self._spread))
        # The bid is floored at one tick, so prices stay > 0 and the ask stays a spread above.
        bid_ticks = max(1, self._mid_ticks - spread_ticks // 2)
        ask_ticks = bid_ticks + spread_ticks
        quote = Quote(
            symbol=self.symbol,
            bid_price=bid_ticks * self._tick,
            bid_size=Decimal(rng.randint(1, 10) * 100),
            ask_price=ask_ticks * self._tick,
            ask_size=Decimal(rng.randint(1, 10) * 100),
            ts_event_ns=ts_event_ns,
        )
        trade = Trade(
            symbol=self.symbol,
            price=rng.randint(bid_ticks, ask_ticks) * self._tick,
            size=Decimal(rng.choice(_TRADE_SIZES)),
            ts_event_ns=ts_event_ns,
        )
        if not self._levels:
            return [quote, trade]
        return [quote, trade, *self._book_deltas(bid_ticks, ask_ticks, quote, ts_event_ns)]

    def _book_deltas(
        self, bid_ticks: int, ask_ticks: int, quote: Quote, ts_event_ns: int
    ) -> list[BookDelta]:
        wanted = {
            True: {bid_ticks - i for i in range(self._levels) if bid_ticks - i > 0},
            False: {ask_ticks + i for i in range(self._levels)},
        }
        deltas = [
            self._delta(is_bid, ticks, Decimal(0), ts_event_ns)
            for is_bid in (True, False)
            for ticks in sorted(self._book[is_bid] - wanted[is_bid])
        ]
        for is_bid in (True, False):
            for ticks in sorted(wanted[is_bid], reverse=is_bid):
                if is_bid and ticks == bid_ticks:
                    size = quote.bid_size
                elif not is_bid and ticks == ask_ticks:
                    size = quote.ask_size
                else:
                    size = Decimal(self._rng.randint(1, 20) * 100)
                deltas.append(self._delta(is_bid, ticks, size, ts_event_ns))
        self._book = wanted
        return deltas

    def _delta(self, is_bid: bool, ticks: int, size: Decimal, ts_event_ns: int) -> BookDelta:
        return BookDelta(
            symbol=self.symbol,
            side=Side.BUY if is_bid else Side.SELL,
            price=ticks * self._tick,
            size=size,
            ts_event_ns=ts_event_ns,
        )


class SyntheticFeed:
    """Every `tick_interval_ms`, one quote then one trade per symbol, symbols in the given order."""

    name = "synthetic"

    def __init__(self, config: SyntheticFeedConfig, symbols: Sequence[str]) -> None:
        self.config = config
        self.symbols = list(symbols)

    def events(self, start_ns: int = 0) -> Iterator[Quote | Trade | BookDelta]:
        """The endless event sequence on simulated time: step k is at `start_ns + k * interval`.

        Each call starts the walk afresh, so two calls yield the same sequence.
        """
        walks = [_Walk(self.config, symbol) for symbol in self.symbols]
        interval_ns = round(self.config.tick_interval_ms * 1_000_000)
        ts_ns = start_ns
        while True:
            for walk in walks:
                yield from walk.step(ts_ns)
            ts_ns += interval_ns

    async def stream(self) -> AsyncIterator[Quote | Trade | BookDelta]:
        """The same walk paced in real time; events carry the wall-clock time of their step."""
        walks = [_Walk(self.config, symbol) for symbol in self.symbols]
        interval_s = self.config.tick_interval_ms / 1000
        loop = asyncio.get_running_loop()
        next_step_s = loop.time()
        while True:
            ts_ns = time.time_ns()
            for walk in walks:
                for event in walk.step(ts_ns):
                    yield event
            next_step_s += interval_s
            delay_s = next_step_s - loop.time()
            if delay_s < -interval_s:
                next_step_s = loop.time()  # fell behind: carry on from now rather than burst
            await asyncio.sleep(max(delay_s, 0.0))

    def clock_ns(self) -> int:
        """Event time now: a synthetic feed lives on the wall clock."""
        return time.time_ns()
