"""The simulated exchange as a venue: reports arrive on its queue, the acknowledgement is the
first of them, latency holds an order back, cancel and lookups answer by client order id."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from components.core.config import SimulatedVenueConfig
from components.core.events import (
    BookLevel,
    BookSnapshot,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Trade,
)
from components.execution.venues.base import DuplicateClientOrderId, Report
from components.execution.venues.simulated import ACCOUNT_NAME, SimulatedExchange
from tests.factories import quote

D = Decimal


def order(client_order_id: str = "c1", *, limit_price: str | None = None) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=1,
        ts_origin_ns=1,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=None if limit_price is None else D(limit_price),
    )


def drain(venue: SimulatedExchange) -> list[Report]:
    reports = []
    while not venue.reports.empty():
        reports.append(venue.reports.get_nowait())
    return reports


async def test_submit_when_market_then_ack_is_new_and_fill_follows_on_the_queue() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig(fee_per_share=D("0.005")))
    venue.on_quote(quote("99.98", "100.02"))
    ack = await venue.submit(order())
    assert ack.status is OrderStatus.NEW
    new, filled = drain(venue)
    assert new == ack
    assert (filled.status, filled.filled_quantity, filled.last_price, filled.last_fee) == (
        OrderStatus.FILLED,
        D(10),
        D("100.02"),
        D("0.050"),
    )
    assert await venue.positions() == {"AAPL": D(10)}


async def test_submit_when_id_known_then_duplicate_client_order_id() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order())
    with pytest.raises(DuplicateClientOrderId):
        await venue.submit(order())


async def test_submit_when_latency_then_pending_until_it_passes() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig(latency_ms=30))
    venue.on_quote(quote("99.98", "100.02"))
    ack = await venue.submit(order())
    assert ack.status is OrderStatus.PENDING_NEW and venue.reports.empty()
    first = await asyncio.wait_for(venue.reports.get(), 2)
    assert first.status is OrderStatus.NEW
    await venue.close()


async def test_cancel_when_resting_or_in_flight_then_canceled_and_no_longer_open() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order("resting", limit_price="90"))
    venue.config = SimulatedVenueConfig(latency_ms=5000)
    await venue.submit(order("in-flight"))
    assert {r.client_order_id for r in await venue.open_orders()} == {"resting", "in-flight"}
    drain(venue)
    await venue.cancel("resting")
    await venue.cancel("in-flight")
    assert {(r.client_order_id, r.status) for r in drain(venue)} == {
        ("resting", OrderStatus.CANCELED),
        ("in-flight", OrderStatus.CANCELED),
    }
    assert await venue.open_orders() == []
    await venue.close()


async def test_get_order_when_unknown_then_none() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    assert await venue.get_order("nope") is None


async def test_trades_and_books_when_forwarded_then_queue_and_levels_fill_orders() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig(respect_quote_size=True))
    venue.on_quote(quote("99.98", "100.02", size=5))
    await venue.submit(order("resting", limit_price="99.98"))  # 5 shares ahead of it
    venue.on_trade(Trade(symbol="AAPL", price=D("99.98"), size=D(8), ts_event_ns=1))
    drain(venue)
    assert (await venue.get_order("resting")).filled_quantity == D(3)  # type: ignore[union-attr]
    book = BookSnapshot(
        symbol="AAPL",
        bids=[BookLevel(D("99.97"), D(50))],
        asks=[BookLevel(D("100.01"), D(4)), BookLevel(D("100.03"), D(50))],
        ts_event_ns=1,
    )
    venue.on_book(book)
    await venue.submit(order("taker"))
    reports = [r for r in drain(venue) if r.client_order_id == "taker"]
    assert [(r.last_quantity, r.last_price) for r in reports if r.last_price] == [
        (D(4), D("100.01")),
        (D(6), D("100.03")),
    ]


async def test_restart_when_orders_filled_before_then_positions_and_fills_kept(
    tmp_path: Path,
) -> None:
    """The exchange's account outlives its process, as a real venue's does: a restarted engine
    looks up an order of the earlier process and finds its fills; the positions are kept."""
    first = SimulatedExchange(SimulatedVenueConfig())
    first.keep_state_in(tmp_path)
    first.on_quote(quote("99.98", "100.02"))
    await first.submit(order("c1"))
    await first.submit(msgspec.structs.replace(order("c2"), side=Side.SELL, quantity=D("2.5")))
    await first.submit(order("resting", limit_price="90"))
    assert await first.positions() == {"AAPL": D("7.5")}

    again = SimulatedExchange(SimulatedVenueConfig())
    again.keep_state_in(tmp_path)
    assert await again.positions() == {"AAPL": D("7.5")}
    found = await again.get_order("c1")
    assert found is not None
    assert (found.status, found.filled_quantity, found.avg_fill_price) == (
        OrderStatus.FILLED,
        D(10),
        D("100.02"),
    )
    assert await again.get_order("resting") is None  # no fill: gone with the process
    assert await again.open_orders() == []


async def test_keep_state_in_when_called_again_on_the_same_exchange_then_positions_once(
    tmp_path: Path,
) -> None:
    """An engine restarted on a venue that survived (the fault campaign's) keeps state again."""
    exchange = SimulatedExchange(SimulatedVenueConfig())
    exchange.keep_state_in(tmp_path)
    exchange.on_quote(quote("99.98", "100.02"))
    await exchange.submit(order("c1"))
    exchange.keep_state_in(tmp_path)
    assert await exchange.positions() == {"AAPL": D(10)}


async def test_keep_state_in_when_last_line_torn_then_skipped_and_the_rest_loaded(
    tmp_path: Path,
) -> None:
    first = SimulatedExchange(SimulatedVenueConfig())
    first.keep_state_in(tmp_path)
    first.on_quote(quote("99.98", "100.02"))
    await first.submit(order("c1"))
    with (tmp_path / ACCOUNT_NAME).open("a") as account:
        account.write('{"client_order_id": "c2", "venue_ord')  # killed mid-write
    again = SimulatedExchange(SimulatedVenueConfig())
    again.keep_state_in(tmp_path)
    assert await again.positions() == {"AAPL": D(10)}


def test_keep_state_in_when_a_line_before_the_last_damaged_then_clear_error(
    tmp_path: Path,
) -> None:
    (tmp_path / ACCOUNT_NAME).write_text('{"client_order_id": "x"\n{}\n')
    with pytest.raises(ValueError, match=f"{ACCOUNT_NAME}: line 1: "):
        SimulatedExchange(SimulatedVenueConfig()).keep_state_in(tmp_path)
