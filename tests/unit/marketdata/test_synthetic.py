"""The synthetic feed: determinism by seed, per-symbol independence, and valid, exact prices over
many steps (bid < ask, prices > 0, on the tick grid, sizes positive integers)."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from components.core.config import SyntheticFeedConfig
from components.core.events import Quote, Trade
from components.marketdata.synthetic import SyntheticFeed, symbol_seed


def _take(feed: SyntheticFeed, n: int) -> list[Quote | Trade]:
    return list(itertools.islice(feed.events(start_ns=1_000), n))


def test_events_when_same_seed_then_same_sequence() -> None:
    config = SyntheticFeedConfig(seed=11)
    first = _take(SyntheticFeed(config, ["AAPL", "MSFT"]), 500)
    second = _take(SyntheticFeed(config, ["AAPL", "MSFT"]), 500)
    assert first == second


def test_events_when_seed_differs_then_prices_differ() -> None:
    first = _take(SyntheticFeed(SyntheticFeedConfig(seed=1), ["AAPL"]), 200)
    second = _take(SyntheticFeed(SyntheticFeedConfig(seed=2), ["AAPL"]), 200)
    assert first != second


def test_events_when_symbol_added_then_other_symbols_unchanged() -> None:
    config = SyntheticFeedConfig(seed=5)
    alone = _take(SyntheticFeed(config, ["AAPL"]), 200)
    mixed = [e for e in _take(SyntheticFeed(config, ["MSFT", "AAPL"]), 400) if e.symbol == "AAPL"]
    assert alone == mixed


def test_symbol_seed_when_computed_then_stable_across_processes() -> None:
    """A CRC-32, not hash(): this exact value must never change."""
    assert symbol_seed(7, "AAPL") == (7 << 32) ^ 0xB665575C == 33_124_865_884


def test_events_when_stepping_then_quote_and_trade_per_symbol_on_simulated_clock() -> None:
    config = SyntheticFeedConfig(tick_interval_ms=50)
    events = _take(SyntheticFeed(config, ["AAPL", "MSFT"]), 8)
    assert [(type(e).__name__, e.symbol) for e in events[:4]] == [
        ("Quote", "AAPL"),
        ("Trade", "AAPL"),
        ("Quote", "MSFT"),
        ("Trade", "MSFT"),
    ]
    assert [e.ts_event_ns for e in events] == [1_000] * 4 + [1_000 + 50_000_000] * 4


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=-(2**31), max_value=2**31),
    initial=st.sampled_from(["0.05", "1", "12.34", "100", "4321.5"]),
    tick=st.sampled_from(["0.01", "0.05", "0.0001", "1"]),
    volatility_bps=st.floats(min_value=1, max_value=1000),
    spread_bps=st.floats(min_value=0.5, max_value=1000),
)
def test_events_when_any_config_then_every_event_valid_and_exact(
    seed: int, initial: str, tick: str, volatility_bps: float, spread_bps: float
) -> None:
    tick_size = Decimal(tick)
    config = SyntheticFeedConfig(
        seed=seed,
        initial_price=Decimal(initial),
        tick_size=tick_size,
        volatility_bps=volatility_bps,
        spread_bps=spread_bps,
    )
    last_quote: Quote | None = None
    for event in _take(SyntheticFeed(config, ["AAPL", "BRK.B"]), 2_000):
        if isinstance(event, Quote):
            assert Decimal(0) < event.bid_price < event.ask_price
            assert event.ask_price - event.bid_price >= tick_size
            for price in (event.bid_price, event.ask_price):
                assert price % tick_size == 0
            assert event.bid_size > 0 and event.ask_size > 0
            last_quote = event
        else:
            assert last_quote is not None and last_quote.symbol == event.symbol
            assert last_quote.bid_price <= event.price <= last_quote.ask_price
            assert event.price % tick_size == 0
            assert event.size > 0 and event.size == event.size.to_integral_value()


async def test_stream_when_paced_then_wall_clock_stamps_and_interval_respected() -> None:
    feed = SyntheticFeed(SyntheticFeedConfig(tick_interval_ms=20), ["AAPL"])
    before_ns = time.time_ns()
    stamps: list[int] = []
    async with asyncio.timeout(5):
        async for event in feed.stream():
            stamps.append(event.ts_event_ns)
            if len(stamps) == 6:  # three steps of quote + trade
                break
    assert stamps[0] >= before_ns
    steps = sorted(set(stamps))
    assert len(steps) == 3
    assert all(later - earlier >= 15_000_000 for earlier, later in itertools.pairwise(steps))


def test_events_when_book_levels_then_deltas_keep_an_uncrossed_book_at_the_quote() -> None:
    from components.core.events import BookDelta
    from components.marketdata.books import OrderBook

    config = SyntheticFeedConfig(book_levels=5, volatility_bps=30)
    book = OrderBook("AAPL")
    quote: Quote | None = None
    steps = 0
    for event in _take(SyntheticFeed(config, ["AAPL"]), 5_000):
        if isinstance(event, BookDelta):
            assert book.apply(event) is None  # never refused: never crossed, never unknown
            continue
        if isinstance(event, Quote):
            if quote is not None:  # the previous step's deltas are all applied
                assert book.best_bid is not None and book.best_ask is not None
                assert (book.best_bid.price, book.best_ask.price) == (
                    quote.bid_price,
                    quote.ask_price,
                )
                assert len(book.bids()) == len(book.asks()) == 5
                steps += 1
            quote = event
    assert steps > 100
