"""Order books: deltas insert, update and remove levels; best bid/ask, mid, spread, depth and
imbalance; the kept depth evicts the worst level; crossing deltas and unknown levels are refused
without changing the book; snapshots replace it; and a property test: no stream of random deltas
and snapshots leaves a crossed, unsorted or over-deep book; every refusal leaves it unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.core.events import BookDelta, BookLevel, BookSnapshot, Side
from components.marketdata.books import Books, OrderBook
from components.marketdata.validation import DropReason

D = Decimal


def _book(depth: int = 50) -> OrderBook:
    book = OrderBook("AAPL", depth)
    for price, size in (("99.9", 3), ("99.8", 5), ("99.7", 1)):
        assert book.apply_delta(True, D(price), D(size)) is None
    for price, size in (("100.1", 2), ("100.2", 4)):
        assert book.apply_delta(False, D(price), D(size)) is None
    return book


def test_book_when_levels_added_then_best_mid_spread_depth_imbalance() -> None:
    book = _book()
    assert book.best_bid == BookLevel(D("99.9"), D(3))
    assert book.best_ask == BookLevel(D("100.1"), D(2))
    assert book.mid == D("100.0")
    assert book.spread == D("0.2")
    assert book.depth_size() == (D(9), D(6))
    assert book.depth_size(1) == (D(3), D(2))
    assert book.imbalance(levels=None) == D(3) / D(15)
    assert book.imbalance(levels=1) == D(1) / D(5)
    assert [level.price for level in book.bids()] == [D("99.9"), D("99.8"), D("99.7")]
    assert [level.price for level in book.asks(1)] == [D("100.1")]


def test_apply_delta_when_update_and_remove_then_levels_change() -> None:
    book = _book()
    assert book.apply_delta(True, D("99.8"), D(7)) is None
    assert book.bids()[1] == BookLevel(D("99.8"), D(7))
    assert book.apply_delta(True, D("99.9"), D(0)) is None
    assert book.best_bid == BookLevel(D("99.8"), D(7))
    assert len(book) == 4


@pytest.mark.parametrize(
    ("is_bid", "price", "size", "reason"),
    [
        (True, "100.1", "1", DropReason.CROSSED_BOOK),  # bid at the best ask: locked
        (True, "100.5", "1", DropReason.CROSSED_BOOK),
        (False, "99.9", "1", DropReason.CROSSED_BOOK),
        (True, "99.85", "0", DropReason.UNKNOWN_LEVEL),
        (False, "NaN", "1", DropReason.INVALID_PRICE),
        (False, "-1", "1", DropReason.INVALID_PRICE),
        (False, "0", "1", DropReason.INVALID_PRICE),
        (True, "99", "-1", DropReason.INVALID_SIZE),
        (True, "99", "Infinity", DropReason.INVALID_SIZE),
    ],
)
def test_apply_delta_when_invalid_then_refused_and_book_unchanged(
    is_bid: bool, price: str, size: str, reason: DropReason
) -> None:
    book = _book()
    before = book.snapshot()
    assert book.apply_delta(is_bid, D(price), D(size)) is reason
    assert book.snapshot() == before


def test_apply_delta_when_depth_full_then_worst_evicted_and_outside_ignored() -> None:
    book = OrderBook("AAPL", depth=3)
    for price in ("10", "11", "12"):
        book.apply_delta(True, D(price), D(1))
    assert book.apply_delta(True, D("9"), D(1)) is None  # below the kept depth: not stored
    assert [level.price for level in book.bids()] == [D(12), D(11), D(10)]
    assert book.apply_delta(True, D("11.5"), D(2)) is None  # enters: 10 goes
    assert [level.price for level in book.bids()] == [D(12), D("11.5"), D(11)]
    assert book.apply_delta(True, D("9"), D(0)) is None  # removing beyond the depth: ignored
    for price in ("20", "21", "22", "23"):
        book.apply_delta(False, D(price), D(1))
    assert [level.price for level in book.asks()] == [D(20), D(21), D(22)]


def test_apply_snapshot_when_valid_then_replaces_and_keeps_depth() -> None:
    book = _book(depth=2)
    snapshot = BookSnapshot(
        symbol="AAPL",
        bids=[BookLevel(D(1), D(1)), BookLevel(D(3), D(1)), BookLevel(D(2), D(0))],
        asks=[BookLevel(D(5), D(2)), BookLevel(D(4), D(1)), BookLevel(D(6), D(1))],
        ts_event_ns=7,
    )
    assert book.apply_snapshot(snapshot) is None
    assert book.bids() == [BookLevel(D(3), D(1)), BookLevel(D(1), D(1))]
    assert book.asks() == [BookLevel(D(4), D(1)), BookLevel(D(5), D(2))]
    assert book.ts_event_ns == 7


@pytest.mark.parametrize(
    ("bids", "asks", "reason"),
    [
        ([(5, 1)], [(5, 1)], DropReason.CROSSED_BOOK),
        ([(1, 1), (1, 2)], [(5, 1)], DropReason.MALFORMED),
        ([(-1, 1)], [(5, 1)], DropReason.INVALID_PRICE),
        ([(1, -1)], [(5, 1)], DropReason.INVALID_SIZE),
    ],
)
def test_apply_snapshot_when_invalid_then_refused_and_book_unchanged(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], reason: DropReason
) -> None:
    book = _book()
    before = book.snapshot()
    snapshot = BookSnapshot(
        symbol="AAPL",
        bids=[BookLevel(D(p), D(s)) for p, s in bids],
        asks=[BookLevel(D(p), D(s)) for p, s in asks],
        ts_event_ns=1,
    )
    assert book.apply_snapshot(snapshot) is reason
    assert book.snapshot() == before


def test_books_when_events_for_symbols_then_one_book_each() -> None:
    books = Books(depth=10)
    delta = BookDelta(symbol="MSFT", side=Side.SELL, price=D(10), size=D(1), ts_event_ns=5)
    assert books.apply(delta) is None
    book = books.get("MSFT")
    assert book is not None and book.best_ask == BookLevel(D(10), D(1)) and book.ts_event_ns == 5
    assert books.get("AAPL") is None


_prices = st.one_of(
    st.integers(1, 40).map(lambda n: D(n) / 4),
    st.sampled_from([D("NaN"), D("-1"), D(0), D("Infinity")]),
)
_sizes = st.one_of(st.integers(0, 3).map(D), st.sampled_from([D(-1), D("NaN")]))
_deltas = st.tuples(st.booleans(), _prices, _sizes)
_levels = st.lists(st.tuples(_prices, _sizes), max_size=8)
_snapshots = st.tuples(_levels, _levels)


def _check_invariants(book: OrderBook) -> None:
    bids, asks = book._bid_prices, book._ask_prices
    assert len(bids) <= book.depth and len(asks) <= book.depth
    assert bids == sorted(set(bids)) and asks == sorted(set(asks))
    assert set(bids) == set(book._bids) and set(asks) == set(book._asks)
    assert all(size > 0 for size in (*book._bids.values(), *book._asks.values()))
    if bids and asks:
        assert bids[-1] < asks[0]
        assert book.spread is not None and book.spread > 0


@settings(max_examples=250, deadline=None, derandomize=True)
@given(
    depth=st.integers(1, 6),
    steps=st.lists(st.one_of(_deltas, _snapshots.map(lambda s: ("snap", *s))), max_size=60),
)
def test_book_when_random_deltas_then_never_crossed_or_over_deep(depth: int, steps: list) -> None:
    book = OrderBook("AAPL", depth)
    for step in steps:
        before = book.snapshot()
        if step[0] == "snap":
            snapshot = BookSnapshot(
                symbol="AAPL",
                bids=[BookLevel(p, s) for p, s in step[1]],
                asks=[BookLevel(p, s) for p, s in step[2]],
                ts_event_ns=1,
            )
            reason = book.apply_snapshot(snapshot)
        else:
            is_bid, price, size = step
            reason = book.apply_delta(is_bid, price, size)
            if reason is None and price.is_finite():
                side = book.bids() if is_bid else book.asks()
                held = {level.price: level.size for level in side}
                if size == 0:
                    assert price not in held
                elif price in held:
                    assert held[price] == size
        if reason is not None:
            assert book.snapshot() == before
        _check_invariants(book)
