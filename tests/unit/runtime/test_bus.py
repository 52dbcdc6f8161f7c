"""The bus against the real broker proxies: publish/subscribe by prefix, request/reply,
timeouts, malformed frames and sequence gaps."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import prometheus_client as prom
import pytest
import zmq

from components.broker.service import Broker
from components.core import topics, wire
from components.core.errors import BusError
from components.core.events import Heartbeat, Quote, Trade
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints
from tests.factories import quote


def _quote(symbol: str, bid: str = "10.00") -> Quote:
    return quote(bid, str(Decimal(bid) + Decimal("0.02")), symbol)


async def _wait_connected(bus: Bus) -> None:
    async with asyncio.timeout(5):
        while not all(v for k, v in bus.readiness().items() if k != "bus.heartbeat"):
            await asyncio.sleep(0.01)


async def _publish_until_received(publisher, subscriber_iter, topic, payload):  # type: ignore[no-untyped-def]
    """PUB/SUB joins late: publish until the subscription has propagated, then return."""
    async with asyncio.timeout(5):
        while True:
            publisher.publish(topic, payload, ts_event_ns=1)
            try:
                return await asyncio.wait_for(anext(subscriber_iter), 0.05)
            except TimeoutError:
                continue


async def test_subscriber_when_prefix_matches_then_receives_only_matching_topics(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    bus = Bus(endpoints, "test", prom.CollectorRegistry())
    try:
        publisher = bus.publisher()
        messages = bus.subscriber([topics.QUOTES])
        await _wait_connected(bus)
        first = await _publish_until_received(
            publisher, messages, topics.quote("AAPL"), _quote("AAPL")
        )
        assert first.topic == "md.quote.AAPL"
        publisher.publish(
            topics.trade("AAPL"),
            Trade(symbol="AAPL", price=Decimal(1), size=Decimal(1), ts_event_ns=1),
            ts_event_ns=1,
        )
        publisher.publish(topics.quote("MSFT"), _quote("MSFT", "20.00"), ts_event_ns=1)
        envelope = await asyncio.wait_for(anext(messages), 2)
        while envelope.topic == "md.quote.AAPL":  # the warm-up may have left copies
            envelope = await asyncio.wait_for(anext(messages), 2)
        assert envelope.topic == "md.quote.MSFT"
        assert envelope.payload == _quote("MSFT", "20.00")
        assert envelope.publisher == "test"
    finally:
        bus.close()


async def test_subscriber_when_frame_malformed_then_skips_and_counts(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    registry = prom.CollectorRegistry()
    bus = Bus(endpoints, "test", registry)
    raw = zmq.Context.instance().socket(zmq.PUB)
    raw.connect(endpoints.publish_url)
    try:
        publisher = bus.publisher()
        messages = bus.subscriber([topics.QUOTES])
        await _wait_connected(bus)
        await _publish_until_received(publisher, messages, topics.quote("AAPL"), _quote("AAPL"))
        async with asyncio.timeout(5):
            while registry.get_sample_value("bus_messages_malformed_total") in (None, 0.0):
                raw.send(b"md.quote.AAPL\x00not msgpack at all")
                raw.send(b"md.quote.no separator")
                publisher.publish(topics.quote("MSFT"), _quote("MSFT"), ts_event_ns=1)
                await asyncio.wait_for(anext(messages), 2)
        assert registry.get_sample_value("bus_messages_malformed_total") >= 1
    finally:
        raw.close(linger=0)
        bus.close()


async def test_request_when_server_replies_then_returns_reply_with_same_trace(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    bus = Bus(endpoints, "client", prom.CollectorRegistry())
    server_bus = Bus(endpoints, "server", prom.CollectorRegistry())

    async def echo(request: wire.Envelope) -> Heartbeat:
        assert isinstance(request.payload, Heartbeat)
        return Heartbeat(ts_event_ns=request.payload.ts_event_ns + 1)

    serving = asyncio.create_task(server_bus.responder().serve("echo.reply", echo))
    try:
        requester = bus.requester()
        await _wait_connected(bus)
        await _wait_connected(server_bus)
        replies = await asyncio.gather(
            *(
                requester.request("echo", Heartbeat(ts_event_ns=n), timeout_s=5, trace_id=f"t{n}")
                for n in range(20)
            )
        )
        assert [r.payload for r in replies] == [Heartbeat(ts_event_ns=n + 1) for n in range(20)]
        assert [r.trace_id for r in replies] == [f"t{n}" for n in range(20)]
    finally:
        serving.cancel()
        bus.close()
        server_bus.close()


async def test_request_when_nobody_serves_then_times_out(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    registry = prom.CollectorRegistry()
    bus = Bus(endpoints, "client", registry)
    try:
        requester = bus.requester()
        await _wait_connected(bus)
        with pytest.raises(BusError, match=r"no reply to risk\.check within 0\.1 s"):
            await requester.request("risk.check", Heartbeat(ts_event_ns=1), timeout_s=0.1)
        assert registry.get_sample_value("bus_requests_total", {"outcome": "timeout"}) == 1
    finally:
        bus.close()


async def test_subscriber_when_sequence_jumps_then_counts_missed_messages(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    registry = prom.CollectorRegistry()
    bus = Bus(endpoints, "test", registry)
    try:
        publisher = bus.publisher()
        messages = bus.subscriber([topics.QUOTES])
        await _wait_connected(bus)
        await _publish_until_received(publisher, messages, topics.quote("AAPL"), _quote("AAPL"))
        await asyncio.sleep(0.1)
        publisher._seq[topics.quote("AAPL")] += 5  # as if five messages were lost on the way
        publisher.publish(topics.quote("MSFT"), _quote("MSFT"), ts_event_ns=1)
        publisher.publish(topics.quote("AAPL"), _quote("AAPL"), ts_event_ns=1)
        async with asyncio.timeout(5):
            while (await anext(messages)).topic != "md.quote.AAPL":
                pass
        assert registry.get_sample_value("bus_sequence_gaps_total", {"publisher": "test"}) == 5
    finally:
        bus.close()


async def test_readiness_when_heartbeat_seen_then_ready(
    broker: Broker, endpoints: BrokerEndpoints
) -> None:
    bus = Bus(endpoints, "test", prom.CollectorRegistry(), heartbeat_interval_s=0.2)
    try:
        publisher = bus.publisher()
        messages = bus.subscriber([topics.QUOTES])
        await _wait_connected(bus)
        assert bus.readiness()["bus.heartbeat"] is False
        reader = asyncio.create_task(anext(messages))
        async with asyncio.timeout(5):
            while not bus.readiness()["bus.heartbeat"]:
                publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=1), ts_event_ns=1)
                await asyncio.sleep(0.02)
        reader.cancel()
        assert all(bus.readiness().values())
    finally:
        bus.close()


async def test_request_when_no_broker_then_fails_at_once_without_waiting(
    endpoints: BrokerEndpoints,
) -> None:
    """No broker listens on `endpoints` here (no `broker` fixture): nothing can take the request."""
    registry = prom.CollectorRegistry()
    bus = Bus(endpoints, "client", registry)
    try:
        requester = bus.requester()
        async with asyncio.timeout(1):  # far less than the request's own timeout
            with pytest.raises(BusError, match="the broker is not reachable"):
                await requester.request("risk.check", Heartbeat(ts_event_ns=1), timeout_s=30)
        assert registry.get_sample_value("bus_requests_total", {"outcome": "unsent"}) == 1
        assert bus.readiness()["bus.requester"] is False
    finally:
        bus.close()
