"""The Alpaca venue against the local fake of Alpaca's Trading API: every documented status code
becomes the right venue error, orders of every type and time in force are sent as documented,
fills arrive from the trade_updates stream, and what happened while the stream was down is
polled after it reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import prometheus_client as prom
import pytest

from components.core.events import Order, OrderStatus, OrderType, Side, TimeInForce
from components.execution.gateway import Gateway, GatewayMetrics
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.alpaca import AlpacaVenue, parsing
from components.execution.venues.alpaca.client import AlpacaClient, retry_after_s
from components.execution.venues.base import (
    DuplicateClientOrderId,
    OrderRefused,
    OutcomeUnknown,
    RateLimited,
    Report,
    VenueError,
    VenueUnavailable,
)
from components.local import free_ports
from components.runtime.credentials import AlpacaCredentials
from tests.fakes import alpaca_trading
from tests.fakes.alpaca_trading import FakeAlpacaTrading, Faults

D = Decimal
CREDENTIALS = AlpacaCredentials.from_env(
    {"APCA_API_KEY_ID": alpaca_trading.KEY, "APCA_API_SECRET_KEY": alpaca_trading.SECRET}
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpacaTrading]:
    async with alpaca_trading.running(faults=Faults(hang_s=2.0)) as server:
        server.set_price("AAPL", "100.02")
        yield server


@pytest.fixture
async def venue(fake: FakeAlpacaTrading) -> AsyncIterator[AlpacaVenue]:
    alpaca = AlpacaVenue(fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05)
    yield alpaca
    await alpaca.close()


def order(
    client_order_id: str = "c1",
    *,
    quantity: int = 10,
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
    stop_price: str | None = None,
    time_in_force: TimeInForce = TimeInForce.DAY,
) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id="s",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
        order_type=order_type,
        limit_price=None if limit_price is None else D(limit_price),
        stop_price=None if stop_price is None else D(stop_price),
        time_in_force=time_in_force,
    )


async def until(venue: AlpacaVenue, status: OrderStatus) -> list[Report]:
    seen: list[Report] = []
    async with asyncio.timeout(5):
        while not seen or seen[-1].status is not status:
            seen.append(await venue.reports.get())
    return seen


async def test_submit_when_market_then_accepted_and_fill_arrives_on_the_stream(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    await venue.start()
    async with asyncio.timeout(5):
        while not venue.streaming or not fake._streams:
            await asyncio.sleep(0.01)
    ack = await venue.submit(order())
    assert (ack.status, ack.filled_quantity, ack.client_order_id) == (OrderStatus.NEW, 0, "c1")
    reports = await until(venue, OrderStatus.FILLED)
    filled = reports[-1]
    assert (filled.filled_quantity, filled.avg_fill_price) == (D(10), D("100.02"))
    assert (filled.last_quantity, filled.last_price) == (D(10), D("100.02"))
    assert fake.order("c1")["type"] == "market"  # type: ignore[index]
    assert await venue.positions() == {"AAPL": D(10)}


@pytest.mark.parametrize(
    ("order_type", "limit", "stop", "tif"),
    [
        (OrderType.LIMIT, "99", None, TimeInForce.GTC),
        (OrderType.STOP, None, "101", TimeInForce.DAY),
        (OrderType.STOP_LIMIT, "102", "101", TimeInForce.GTC),
        (OrderType.LIMIT, "99", None, TimeInForce.IOC),
    ],
)
async def test_submit_when_each_type_and_time_in_force_then_sent_as_documented(
    venue: AlpacaVenue,
    fake: FakeAlpacaTrading,
    order_type: OrderType,
    limit: str | None,
    stop: str | None,
    tif: TimeInForce,
) -> None:
    await venue.submit(
        order(order_type=order_type, limit_price=limit, stop_price=stop, time_in_force=tif)
    )
    sent = fake.order("c1")
    assert sent is not None
    assert (sent["type"], sent["limit_price"], sent["stop_price"], sent["time_in_force"]) == (
        order_type.value,
        limit,
        stop,
        tif.value,
    )


async def test_get_order_when_known_then_report_when_unknown_then_none_from_404(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
    await asyncio.sleep(0.01)  # routed: accepted -> new
    found = await venue.get_order("c1")
    assert found is not None and found.status is OrderStatus.NEW
    assert await venue.get_order("missing") is None


async def test_submit_when_same_client_id_again_then_duplicate_from_422(venue: AlpacaVenue) -> None:
    await venue.submit(order())
    with pytest.raises(DuplicateClientOrderId, match="client_order_id must be unique"):
        await venue.submit(order())


async def test_submit_when_buying_power_short_then_refused_from_403(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    fake.buying_power = D(50)
    with pytest.raises(OrderRefused, match="HTTP 403 40310000 insufficient buying power"):
        await venue.submit(order())


async def test_request_when_input_invalid_then_refused_from_422(fake: FakeAlpacaTrading) -> None:
    client = AlpacaClient(fake.url, CREDENTIALS, 1.0)
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "day"}
    with pytest.raises(OrderRefused, match="HTTP 422 40010001 limit_price is required"):
        await client.request("POST", "/v2/orders", body=body)
    too_long = {**body, "type": "market", "client_order_id": "x" * 49}
    with pytest.raises(OrderRefused, match="no more than 48 characters"):
        await client.request("POST", "/v2/orders", body=too_long)
    await client.close()


async def test_request_when_keys_wrong_then_refused_from_401(fake: FakeAlpacaTrading) -> None:
    wrong = AlpacaCredentials.from_env({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "nope"})
    venue = AlpacaVenue(fake.url, wrong, timeout_s=1.0)
    with pytest.raises(OrderRefused, match="HTTP 401 40110000 request is not authorized") as info:
        await venue.submit(order())
    assert "nope" not in str(info.value)
    await venue.close()


async def test_request_when_429_with_retry_after_then_rate_limited_for_that_long(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    fake.fail_next("429")
    with pytest.raises(RateLimited) as info:
        await venue.submit(order())
    assert info.value.retry_after_s == pytest.approx(0.02)
    assert fake.order("c1") is None  # a 429 is not processed


async def test_request_when_window_exhausted_then_429_until_the_reset_header(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    fake.rate_limit = 1
    await venue.positions()
    with pytest.raises(RateLimited) as info:
        await venue.positions()
    assert 0 < info.value.retry_after_s <= 60  # type: ignore[operator]


def test_retry_after_when_headers_then_retry_after_wins_over_reset() -> None:
    assert retry_after_s({"Retry-After": "3", "X-Ratelimit-Reset": "1000"}, 990) == 3
    assert retry_after_s({"X-Ratelimit-Reset": "1000"}, 990) == 10
    assert retry_after_s({"X-Ratelimit-Reset": "1000"}, 1010) == 0
    assert retry_after_s({}, 0) is None


@pytest.mark.parametrize("fault", ["500", "503"])
async def test_request_when_server_error_then_unavailable_and_order_not_created(
    venue: AlpacaVenue, fake: FakeAlpacaTrading, fault: str
) -> None:
    fake.fail_next(fault)
    with pytest.raises(VenueUnavailable, match=f"HTTP {fault} 50010000"):
        await venue.submit(order())
    assert fake.order("c1") is None


async def test_submit_when_accepted_then_no_answer_then_outcome_unknown_yet_order_exists(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    fake.fail_next("timeout")
    with pytest.raises(OutcomeUnknown):
        await venue.submit(order())
    assert fake.order("c1") is not None


async def test_submit_when_connection_dropped_then_outcome_unknown(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    fake.fail_next("drop")
    with pytest.raises(OutcomeUnknown, match="connection lost"):
        await venue.submit(order())


async def test_request_when_nothing_listens_then_unavailable() -> None:
    [port] = free_ports(1)
    venue = AlpacaVenue(f"http://127.0.0.1:{port}", CREDENTIALS, timeout_s=1.0)
    with pytest.raises(VenueUnavailable, match="cannot connect"):
        await venue.open_orders()
    await venue.close()


async def test_cancel_when_working_then_204_and_canceled_when_filled_then_422_swallowed(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    await venue.submit(order("rest", order_type=OrderType.LIMIT, limit_price="90"))
    await venue.submit(order("done"))
    await asyncio.sleep(0.01)
    assert [r.client_order_id for r in await venue.open_orders()] == ["rest"]
    await venue.cancel("rest")
    await venue.cancel("done")  # filled: 422 "order is not cancelable"
    reports = {r.client_order_id: r.status for r in [await venue.reports.get() for _ in range(2)]}
    assert reports == {"rest": OrderStatus.CANCELED, "done": OrderStatus.FILLED}
    assert fake.requests["DELETE /v2/orders/" + fake.by_client_id["done"]] == 1


async def test_account_when_asked_then_documented_fields(venue: AlpacaVenue) -> None:
    account = await venue.account()
    assert account["status"] == "ACTIVE" and D(account["buying_power"]) > 0


async def test_stream_when_dropped_then_reconnects_and_polls_what_it_missed(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    await venue.start()
    await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
    async with asyncio.timeout(5):
        while not venue.streaming:
            await asyncio.sleep(0.01)
    muted = list(fake._streams)
    fake._streams.clear()  # the stream silently stops delivering ...
    fake.set_price("AAPL", "89.50")  # ... while the order fills; then it drops
    for ws in muted:
        await ws.close()
    started = time.monotonic()
    reports = await until(venue, OrderStatus.FILLED)
    assert reports[-1].filled_quantity == D(10) and time.monotonic() - started < 5


async def _streaming(venue: AlpacaVenue, fake: FakeAlpacaTrading) -> None:
    async with asyncio.timeout(5):
        while not venue.streaming or not fake._streams:
            await asyncio.sleep(0.01)


def _sample(venue: AlpacaVenue, name: str, **labels: str) -> float:
    return venue.metrics.registry.get_sample_value(name, {"venue": "alpaca", **labels}) or 0.0


async def test_stream_when_muted_while_an_order_works_then_polled_fill_and_reconnect(
    fake: FakeAlpacaTrading, caplog: pytest.LogCaptureFixture
) -> None:
    """The mute fault: the trade_updates socket stays open and answers pings, but the fill of a
    working order never comes on it. After `silence_timeout_s` without an update the venue polls
    the order over REST, reports the fill once, and reconnects the stream, which it found lying."""
    venue = AlpacaVenue(
        fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05, silence_timeout_s=0.3
    )
    try:
        await venue.start()
        await _streaming(venue, fake)
        await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
        await until(venue, OrderStatus.NEW)
        fake.mute()
        fake.set_price("AAPL", "89.50")  # fills at the venue; the stream says nothing
        assert fake.injected["muted_event"] == 1
        reports = await until(venue, OrderStatus.FILLED)
        assert reports[-1].filled_quantity == D(10)
        async with asyncio.timeout(5):
            while fake.stream_connections < 2 or not venue.streaming:
                await asyncio.sleep(0.01)
        assert _sample(venue, "execution_venue_polls_total", reason="silence") >= 1
        assert _sample(venue, "execution_venue_stream_reconnects_total", reason="silence") == 1
        assert "silence" in caplog.text and alpaca_trading.SECRET not in caplog.text
    finally:
        await venue.close()


async def test_stream_when_quiet_and_nothing_works_then_no_poll_and_no_reconnect(
    fake: FakeAlpacaTrading,
) -> None:
    """Silence with no working order is the normal state of a quiet account, not a fault."""
    venue = AlpacaVenue(
        fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05, silence_timeout_s=0.1
    )
    try:
        await venue.start()
        await _streaming(venue, fake)
        fake.mute()
        await asyncio.sleep(0.5)
        assert fake.requests["GET /v2/orders:by_client_order_id"] == 0
        assert fake.stream_connections == 1
    finally:
        await venue.close()


async def test_stream_when_muted_and_resting_order_unchanged_then_polls_without_reconnect(
    fake: FakeAlpacaTrading,
) -> None:
    """A resting order may hear nothing for hours: the poll that finds it unchanged is enough,
    and the stream is kept (it is reconnected only once a poll shows it missed something)."""
    venue = AlpacaVenue(
        fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05, silence_timeout_s=0.1
    )
    try:
        await venue.start()
        await _streaming(venue, fake)
        await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
        await until(venue, OrderStatus.NEW)
        async with asyncio.timeout(5):
            while _sample(venue, "execution_venue_polls_total", reason="silence") < 3:
                await asyncio.sleep(0.01)
        assert fake.stream_connections == 1
    finally:
        await venue.close()


async def test_stream_when_fill_event_duplicated_then_reported_once(
    fake: FakeAlpacaTrading,
) -> None:
    """The same execution (by Alpaca's execution_id) on the stream twice is one report."""
    fake.faults.duplicate_event = 1.0
    venue = AlpacaVenue(fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05)
    try:
        await venue.start()
        await _streaming(venue, fake)
        await venue.submit(order())
        reports = await until(venue, OrderStatus.FILLED)
        async with asyncio.timeout(5):
            while not _sample(venue, "execution_venue_events_skipped_total", reason="duplicate"):
                await asyncio.sleep(0.01)
        fills = [r for r in reports if r.last_quantity]
        assert len(fills) == 1 and venue.reports.empty()
    finally:
        await venue.close()


async def test_stream_when_malformed_events_then_skipped_counted_and_stream_keeps_going(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    await venue.start()
    await _streaming(venue, fake)
    for data in (None, "fill", {"event": "fill"}, {"event": "new", "order": {"qty": "NaN"}}):
        await fake.send_event(data)
    await venue.submit(order())
    reports = await until(venue, OrderStatus.FILLED)
    assert {r.client_order_id for r in reports} == {"c1"}
    assert _sample(venue, "execution_venue_malformed_bodies_total", endpoint="trade_updates") == 4
    assert venue.ready()


@pytest.mark.parametrize(
    ("call", "endpoint", "body"),
    [
        ("positions", "GET /v2/positions", [{"symbol": "AAPL"}]),
        ("positions", "GET /v2/positions", {"qty": "1e999999999"}),
        ("open_orders", "GET /v2/orders", [{"id": "x"}]),
        ("account", "GET /v2/account", "<html>maintenance</html>"),
    ],
)
async def test_request_when_body_malformed_then_venue_error_names_endpoint_and_excerpt(
    venue: AlpacaVenue, fake: FakeAlpacaTrading, call: str, endpoint: str, body: object
) -> None:
    fake.corrupt_next(body)
    with pytest.raises(parsing.ParseError, match=f"^{endpoint}: unreadable answer: ") as info:
        await getattr(venue, call)()
    assert isinstance(info.value, VenueError) and "(body: " in str(info.value)
    assert alpaca_trading.SECRET not in str(info.value)
    assert _sample(venue, "execution_venue_malformed_bodies_total", endpoint=endpoint) == 1
    assert await venue.positions() == {}  # the next answer is read as usual


async def test_submit_when_ack_malformed_then_outcome_unknown_and_gateway_finds_it_once(
    venue: AlpacaVenue, fake: FakeAlpacaTrading
) -> None:
    """An acknowledgement that cannot be read says nothing of what the venue did: the order was
    created, so the gateway must look it up, not send it again."""
    fake.corrupt_next({"id": None, "status": "accepted"})
    gateway = Gateway(
        venue,
        TokenBucket(100_000, 1000),
        Backoff(initial_s=0.001, cap_s=0.01, max_attempts=3),
        GatewayMetrics(prom.CollectorRegistry()),
    )
    ack = await gateway.submit(order())
    assert ack.client_order_id == "c1" and fake.submits["c1"] == 1
    assert fake.duplicate_attempts == 0


async def test_poll_when_answer_malformed_then_counted_and_the_next_poll_finds_the_fill(
    fake: FakeAlpacaTrading,
) -> None:
    """A silence poll that gets an unreadable answer is logged and counted; the poll loop goes
    on, and the next one reports the fill the muted stream never sent."""
    venue = AlpacaVenue(
        fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05, silence_timeout_s=0.2
    )
    try:
        await venue.start()
        await _streaming(venue, fake)
        await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
        await until(venue, OrderStatus.NEW)
        fake.mute()
        fake.set_price("AAPL", "89.50")
        fake.corrupt_next({"client_order_id": "c1", "qty": {"$gt": 0}})
        reports = await until(venue, OrderStatus.FILLED)
        assert reports[-1].filled_quantity == D(10)
        endpoint = "GET /v2/orders:by_client_order_id"
        assert _sample(venue, "execution_venue_malformed_bodies_total", endpoint=endpoint) == 1
        assert venue.ready()
    finally:
        await venue.close()


async def test_stream_when_one_fill_lost_amid_other_traffic_then_that_order_is_polled(
    fake: FakeAlpacaTrading,
) -> None:
    """A stream that drops one order's fill but goes on delivering the others' updates is not
    silent as a whole: the lost fill is found because that order heard nothing for
    `silence_timeout_s`, while new orders keep the stream busy all along."""
    venue = AlpacaVenue(
        fake.url, CREDENTIALS, timeout_s=1.0, poll_interval_s=0.05, silence_timeout_s=0.4
    )
    traffic: asyncio.Task[None] | None = None

    async def busy() -> None:
        for n in range(2, 200):
            await venue.submit(order(f"c{n}", quantity=1))
            await asyncio.sleep(0.1)  # an update on the stream every 0.1 s < silence_timeout_s

    try:
        await venue.start()
        await _streaming(venue, fake)
        await venue.submit(order(order_type=OrderType.LIMIT, limit_price="90"))
        await until(venue, OrderStatus.NEW)
        fake.mute()
        fake.set_price("AAPL", "89.50")  # c1 fills; only this event is lost
        fake.mute(False)
        traffic = asyncio.create_task(busy())
        async with asyncio.timeout(5):
            while True:
                report = await venue.reports.get()
                if report.client_order_id == "c1" and report.status is OrderStatus.FILLED:
                    break
        assert report.filled_quantity == D(10)
        assert fake.injected["muted_event"] == 1 and not traffic.done()
        assert _sample(venue, "execution_venue_polls_total", reason="silence") >= 1
    finally:
        if traffic is not None:
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await traffic
        await venue.close()
