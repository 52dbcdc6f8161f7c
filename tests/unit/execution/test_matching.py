"""The simulated exchange's fill model on a fake clock: market orders at the quote by side, fees,
slippage rounded against the taker, partial fills against displayed size, book walking, queue
position of resting limit orders, stop triggers, IOC, latency, and rejection without a quote."""

from __future__ import annotations

from decimal import Decimal

from components.core.config import SimulatedVenueConfig
from components.core.events import (
    BookLevel,
    BookSnapshot,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from components.execution.venues.base import Report
from components.execution.venues.matching import MatchingEngine
from tests.factories import quote

D = Decimal


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_000

    def __call__(self) -> int:
        return self.now_ns


def engine(**config: object) -> tuple[MatchingEngine, Clock]:
    clock = Clock()
    return MatchingEngine(SimulatedVenueConfig.model_validate(config), clock), clock


def order(
    side: Side = Side.BUY,
    quantity: int = 10,
    *,
    client_order_id: str = "c1",
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
    stop_price: str | None = None,
    time_in_force: TimeInForce = TimeInForce.DAY,
) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id="s1",
        symbol="AAPL",
        side=side,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
        order_type=order_type,
        limit_price=None if limit_price is None else D(limit_price),
        stop_price=None if stop_price is None else D(stop_price),
        time_in_force=time_in_force,
    )


def fills(reports: list[Report]) -> list[tuple[Decimal, Decimal]]:
    return [(r.last_quantity, r.last_price) for r in reports if r.last_price is not None]


def trade(price: str, size: int) -> Trade:
    return Trade(symbol="AAPL", price=D(price), size=D(size), ts_event_ns=1)


def test_market_buy_when_quote_then_new_and_filled_at_ask_with_fee() -> None:
    sim, _ = engine(fee_per_share="0.005")
    sim.on_quote(quote("99.98", "100.02"))
    new, filled = sim.submit(order())
    assert new.status is OrderStatus.NEW and new.filled_quantity == 0
    assert (filled.status, filled.filled_quantity, filled.avg_fill_price) == (
        OrderStatus.FILLED,
        D(10),
        D("100.02"),
    )
    assert (filled.last_quantity, filled.last_price, filled.last_fee) == (
        D(10),
        D("100.02"),
        D("0.050"),
    )
    assert sim.positions == {"AAPL": D(10)}


def test_market_sell_when_quote_then_fills_at_bid() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    assert fills(sim.submit(order(Side.SELL, 3))) == [(D(3), D("99.98"))]
    assert sim.positions == {"AAPL": D(-3)}


def test_market_when_no_quote_then_rejected_with_reason() -> None:
    sim, _ = engine()
    [report] = sim.submit(order())
    assert (report.status, report.reason) == (OrderStatus.REJECTED, "NO_QUOTE: symbol=AAPL")


def test_slippage_when_configured_then_price_worse_and_rounded_against_the_taker() -> None:
    sim, _ = engine(slippage_bps="3")
    sim.on_quote(quote("99.98", "100.02"))
    # 100.02 x 1.0003 = 100.050006 -> up to 100.06; 99.98 x 0.9997 = 99.950006 -> down to 99.95
    assert fills(sim.submit(order(Side.BUY, client_order_id="b"))) == [(D(10), D("100.06"))]
    assert fills(sim.submit(order(Side.SELL, client_order_id="s"))) == [(D(10), D("99.95"))]


def test_market_when_quote_size_respected_then_partial_fills_across_quotes() -> None:
    sim, _ = engine(respect_quote_size=True)
    sim.on_quote(quote("99.98", "100.02", size=4))
    reports = sim.submit(order(quantity=10))
    assert reports[-1].status is OrderStatus.PARTIALLY_FILLED
    assert fills(reports) == [(D(4), D("100.02"))]
    more = sim.on_quote(quote("99.99", "100.03", size=100))
    assert fills(more) == [(D(6), D("100.03"))]
    assert more[-1].status is OrderStatus.FILLED
    assert more[-1].avg_fill_price == (D(4) * D("100.02") + D(6) * D("100.03")) / D(10)


def test_market_when_book_then_walks_the_levels() -> None:
    sim, _ = engine(respect_quote_size=True)
    book = BookSnapshot(
        symbol="AAPL",
        bids=[BookLevel(D("99.9"), D(5))],
        asks=[
            BookLevel(D("100.0"), D(3)),
            BookLevel(D("100.1"), D(5)),
            BookLevel(D("100.2"), D(9)),
        ],
        ts_event_ns=1,
    )
    sim.on_book(book)
    reports = sim.submit(order(quantity=10))
    assert fills(reports) == [(D(3), D("100.0")), (D(5), D("100.1")), (D(2), D("100.2"))]
    assert reports[-1].filled_quantity == D(10)


def test_ioc_when_not_all_available_then_rest_canceled() -> None:
    sim, _ = engine(respect_quote_size=True)
    sim.on_quote(quote("99.98", "100.02", size=4))
    reports = sim.submit(order(quantity=10, time_in_force=TimeInForce.IOC))
    assert [r.status for r in reports] == [
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCELED,
    ]
    assert reports[-1].filled_quantity == D(4)


def test_limit_when_marketable_then_fills_at_the_quote() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    assert fills(sim.submit(order(order_type=OrderType.LIMIT, limit_price="100.50"))) == [
        (D(10), D("100.02"))
    ]


def test_limit_when_not_marketable_then_rests_until_a_quote_crosses_and_fills_at_limit() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    reports = sim.submit(order(Side.SELL, order_type=OrderType.LIMIT, limit_price="100.10"))
    assert [r.status for r in reports] == [OrderStatus.NEW]
    assert sim.on_quote(quote("100.09", "100.12")) == []
    assert fills(sim.on_quote(quote("100.11", "100.14"))) == [(D(10), D("100.10"))]


def test_limit_when_joining_the_bid_then_trades_use_up_the_queue_ahead_first() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02", size=7))  # 7 shares bid at 99.98 ahead of us
    sim.submit(order(quantity=5, order_type=OrderType.LIMIT, limit_price="99.98"))
    assert sim.on_trade(trade("99.98", 4)) == []  # queue 7 -> 3
    assert fills(sim.on_trade(trade("99.98", 5))) == [(D(2), D("99.98"))]  # 3 ahead, then us
    assert fills(sim.on_trade(trade("99.97", 10))) == [(D(3), D("99.98"))]  # traded through


def test_stop_when_price_reaches_it_then_acts_as_market() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    reports = sim.submit(order(order_type=OrderType.STOP, stop_price="100.50"))
    assert [r.status for r in reports] == [OrderStatus.NEW]
    assert sim.on_quote(quote("100.20", "100.30")) == []
    assert fills(sim.on_quote(quote("100.50", "100.55"))) == [(D(10), D("100.55"))]


def test_stop_limit_when_triggered_then_rests_at_its_limit() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    sim.submit(
        order(Side.SELL, order_type=OrderType.STOP_LIMIT, stop_price="99.50", limit_price="99.40")
    )
    assert fills(sim.on_quote(quote("99.45", "99.48"))) == [(D(10), D("99.45"))]


def test_latency_when_configured_then_order_reaches_the_book_only_after_it() -> None:
    sim, clock = engine(latency_ms=5)
    sim.on_quote(quote("99.98", "100.02"))
    assert sim.submit(order()) == []
    assert sim.get("c1").status is OrderStatus.PENDING_NEW  # type: ignore[union-attr]
    clock.now_ns += 4_999_999
    assert sim.advance() == []
    assert sim.next_arrival_ns() == 1_000 + 5_000_000
    clock.now_ns += 1
    assert [r.status for r in sim.advance()] == [OrderStatus.NEW, OrderStatus.FILLED]


def test_cancel_when_in_flight_then_never_trades() -> None:
    sim, clock = engine(latency_ms=5)
    sim.on_quote(quote("99.98", "100.02"))
    sim.submit(order())
    [canceled] = sim.cancel("c1")
    assert canceled.status is OrderStatus.CANCELED
    clock.now_ns += 10_000_000
    assert sim.advance() == [] and sim.positions == {}
    assert sim.cancel("c1") == []  # already closed: nothing to cancel


def test_venue_ids_when_many_orders_then_unique() -> None:
    sim, _ = engine()
    sim.on_quote(quote("99.98", "100.02"))
    for n in range(5):
        sim.submit(order(client_order_id=f"c{n}"))
    assert len({sim.get(f"c{n}").venue_order_id for n in range(5)}) == 5  # type: ignore[union-attr]


def test_fee_when_per_order_share_and_rate_then_fee_is_their_exact_sum() -> None:
    sim, _ = engine(fee_per_order="1.00", fee_per_share="0.005", fee_rate="0.001")
    sim.on_quote(quote("99.98", "100.02"))
    [_, filled] = sim.submit(order())
    # 1.00 + 10 x 0.005 + 0.001 x 10 x 100.02
    assert filled.last_fee == D("2.05020")


def test_reports_when_clock_injected_then_stamped_by_it_and_ids_carry_the_session() -> None:
    clock = Clock()
    sim = MatchingEngine(SimulatedVenueConfig(), clock, session="1388")
    sim.on_quote(quote("99.98", "100.02"))
    clock.now_ns = 7_000_000_000
    reports = sim.submit(order())
    assert {r.ts_event_ns for r in reports} == {7_000_000_000}
    assert reports[0].venue_order_id == "sim-1388-1"
