"""The simulated exchange: market orders at the quote by side, fees, rejection without a quote,
limit orders marketable or resting until a quote crosses, latency, and cancel on shutdown."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from components.core.config import SimulatedVenueConfig
from components.core.events import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from components.execution.venues.base import Report
from components.execution.venues.simulated import SimulatedExchange
from tests.factories import quote

D = Decimal


def order(
    side: Side = Side.BUY,
    quantity: int = 10,
    *,
    client_order_id: str = "c1",
    limit_price: str | None = None,
) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id="s1",
        symbol="AAPL",
        side=side,
        quantity=D(quantity),
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


def statuses(reports: list[Report]) -> list[str]:
    return [r.status if isinstance(r, OrderUpdate) else "fill" for r in reports]


async def test_submit_when_market_buy_then_new_fill_at_ask_with_fee_then_filled() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig(fee_per_share=D("0.005")))
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order(Side.BUY, 10))
    reports = drain(venue)
    assert statuses(reports) == ["new", "fill", "filled"]
    new, fill, filled = reports
    assert isinstance(fill, Fill) and isinstance(filled, OrderUpdate)
    assert (fill.price, fill.quantity, fill.fee) == (D("100.02"), D(10), D("0.050"))
    assert fill.client_order_id == "c1" and fill.venue == "simulated"
    assert isinstance(new, OrderUpdate) and new.venue_order_id == filled.venue_order_id
    assert (filled.filled_quantity, filled.avg_fill_price) == (D(10), D("100.02"))


async def test_submit_when_market_sell_then_fills_at_bid() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order(Side.SELL, 3))
    [fill] = [r for r in drain(venue) if isinstance(r, Fill)]
    assert (fill.side, fill.price, fill.fee) == (Side.SELL, D("99.98"), D(0))


async def test_submit_when_no_quote_then_rejected_with_reason() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    await venue.submit(order())
    [update] = drain(venue)
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.reason) == (OrderStatus.REJECTED, "NO_QUOTE: symbol=AAPL")


async def test_submit_when_limit_marketable_then_fills_at_the_quote() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order(Side.BUY, limit_price="100.50"))
    [fill] = [r for r in drain(venue) if isinstance(r, Fill)]
    assert fill.price == D("100.02")


async def test_submit_when_limit_not_marketable_then_rests_until_a_quote_crosses() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order(Side.SELL, limit_price="100.10"))
    assert statuses(drain(venue)) == ["new"]
    venue.on_quote(quote("100.09", "100.12"))
    assert drain(venue) == []
    venue.on_quote(quote("100.11", "100.14"))
    reports = drain(venue)
    assert statuses(reports) == ["fill", "filled"]
    assert isinstance(reports[0], Fill) and reports[0].price == D("100.10")
    assert venue.resting == {}


async def test_submit_when_latency_then_reports_arrive_after_it() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig(latency_ms=30))
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order())
    assert venue.reports.empty()
    first = await asyncio.wait_for(venue.reports.get(), 2)
    assert isinstance(first, OrderUpdate) and first.status is OrderStatus.NEW


async def test_cancel_all_when_orders_resting_or_in_flight_then_each_canceled() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    await venue.submit(order(Side.BUY, limit_price="90", client_order_id="resting"))
    drain(venue)
    venue.config = SimulatedVenueConfig(latency_ms=5000)
    await venue.submit(order(client_order_id="in-flight"))
    await venue.cancel_all()
    reports = drain(venue)
    assert {(r.client_order_id, r.status) for r in reports if isinstance(r, OrderUpdate)} == {
        ("resting", OrderStatus.CANCELED),
        ("in-flight", OrderStatus.CANCELED),
    }
    assert venue.resting == {} and venue._in_flight == {}


async def test_fills_when_many_orders_then_fill_ids_unique() -> None:
    venue = SimulatedExchange(SimulatedVenueConfig())
    venue.on_quote(quote("99.98", "100.02"))
    for n in range(5):
        await venue.submit(order(client_order_id=f"c{n}"))
    fill_ids = [r.fill_id for r in drain(venue) if isinstance(r, Fill)]
    assert len(set(fill_ids)) == 5


def test_arrive_when_fees_per_order_share_and_rate_then_fee_is_their_exact_sum() -> None:
    config = SimulatedVenueConfig(
        fee_per_order=D("1.00"), fee_per_share=D("0.005"), fee_rate=D("0.001")
    )
    venue = SimulatedExchange(config, clock=lambda: 1_700_000_000_000_000_000)
    venue.on_quote(quote("99.98", "100.02"))
    venue.arrive(order(Side.BUY, 10))
    [fill] = [r for r in drain(venue) if isinstance(r, Fill)]
    # 1.00 + 10 x 0.005 + 0.001 x 10 x 100.02
    assert fill.fee == D("2.05020")


def test_arrive_when_clock_injected_then_reports_and_ids_follow_it_without_a_loop() -> None:
    now = [5_000_000_000]
    venue = SimulatedExchange(SimulatedVenueConfig(), clock=lambda: now[0])
    venue.on_quote(quote("99.98", "100.02"))
    now[0] = 7_000_000_000
    venue.arrive(order())
    reports = drain(venue)
    assert {r.ts_event_ns for r in reports} == {7_000_000_000}
    [fill] = [r for r in reports if isinstance(r, Fill)]
    assert fill.fill_id == "sim-1388-1-1"  # the session is the clock's start, in hex ms
