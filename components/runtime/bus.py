"""A component's connections to the broker: publish, subscribe, request and serve requests.

Every socket connects to the broker (components never bind), so the broker's address is the only
one a component needs. Each socket is watched by a ZMQ monitor, which is what `/ready` reports;
subscribers also require the broker's heartbeat to be recent, which proves the whole path
broker → subscriber works, not just the TCP connection.

Pub/sub frames are single frames (see `core.wire`). Requests are two frames, `[request id, body]`;
the broker's ROUTER adds the requester's identity in front and routes the reply back by it.

Sockets are plain ZMQ sockets driven by the event loop (`_LoopSocket`), not `zmq.asyncio`: a
profile of the risk manager under market data spent most of its time in zmq.asyncio's future per
message and its enum flag arithmetic.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable

import prometheus_client as prom
import zmq
from zmq.utils.monitor import parse_monitor_message

from components.core import topics, wire
from components.core.errors import BusError, CodecError
from components.core.events import Heartbeat, Payload
from components.runtime.settings import BrokerEndpoints

log = logging.getLogger(__name__)

_MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
_monitor_ids = itertools.count(1)


def new_trace_id() -> str:
    return f"{random.getrandbits(64):016x}"


class BusMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.published = prom.Counter(
            "bus_messages_published",
            "Messages published, by payload type.",
            ["type"],
            registry=registry,
        )
        self.received = prom.Counter(
            "bus_messages_received",
            "Messages received, by payload type.",
            ["type"],
            registry=registry,
        )
        self.malformed = prom.Counter(
            "bus_messages_malformed",
            "Frames dropped because they could not be decoded.",
            registry=registry,
        )
        self.gaps = prom.Counter(
            "bus_sequence_gaps",
            "Messages missed, detected by sequence gaps, per publisher.",
            ["publisher"],
            registry=registry,
        )
        self.connected = prom.Gauge(
            "bus_connected",
            "1 while the socket is connected to the broker.",
            ["socket"],
            registry=registry,
        )
        self.requests = prom.Counter(
            "bus_requests",
            "Requests, by outcome (ok, timeout, unsent).",
            ["outcome"],
            registry=registry,
        )


class _LoopSocket:
    """A plain ZMQ socket driven by the asyncio loop: receive without blocking until the queue is
    empty, and only then wait for the socket's file descriptor.

    ZMQ's descriptor signals that the socket has commands to process, not that a message is
    there, and it stays readable until something processes them. So the loop's callback reads
    EVENTS (which processes them) and wakes a receiver only for POLLIN; a send can process them
    too, so EVENTS is read again after each send. A socket that only sends never watches its
    descriptor at all.
    """

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self._fd = socket.getsockopt(zmq.FD)
        self._readable = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._watching = False

    async def recv(self) -> bytes:
        while True:
            try:
                return self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                await self._wait_readable()

    async def recv_multipart(self) -> list[bytes]:
        while True:
            try:
                return self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                await self._wait_readable()

    def send_multipart(self, frames: list[bytes]) -> None:
        """Send now or raise `zmq.Again` (no peer, or its queue is full): never wait."""
        try:
            self.socket.send_multipart(frames, zmq.NOBLOCK)
        finally:
            self._check_events()

    def _check_events(self) -> None:
        if self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._readable.set()

    async def _wait_readable(self) -> None:
        if not self._watching:
            self._loop.add_reader(self._fd, self._check_events)
            self._watching = True
        self._readable.clear()
        self._check_events()
        await self._readable.wait()

    def close(self, linger_ms: int) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
        self.socket.close(linger=linger_ms)


class _Connection:
    """One socket to the broker and the monitor that knows whether it is connected."""

    def __init__(self, bus: Bus, socket: zmq.Socket, role: str, url: str) -> None:
        self.role = role
        self.connected = False
        self._metrics = bus.metrics
        monitor_url = f"inproc://monitor-{os.getpid()}-{next(_monitor_ids)}"
        socket.monitor(monitor_url, _MONITORED)
        monitor = bus.context.socket(zmq.PAIR)
        monitor.connect(monitor_url)
        self._monitor = _LoopSocket(monitor)
        self._metrics.connected.labels(role).set(0)
        socket.setsockopt(zmq.LINGER, 1000)  # give queued messages a second to leave on close
        socket.connect(url)
        self.socket = _LoopSocket(socket)
        self._watch = asyncio.get_running_loop().create_task(self._watch_monitor())

    async def _watch_monitor(self) -> None:
        while True:
            event = parse_monitor_message(await self._monitor.recv_multipart())["event"]
            if event in (zmq.EVENT_CONNECTED, zmq.EVENT_HANDSHAKE_SUCCEEDED):
                connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                connected = False
            else:
                continue
            if connected != self.connected:
                log.info(
                    "Socket %s %s the broker.",
                    self.role,
                    "connected to" if connected else "lost its connection to",
                )
            self.connected = connected
            self._metrics.connected.labels(self.role).set(int(connected))

    def close(self) -> None:
        self._watch.cancel()
        self.socket.socket.disable_monitor()
        self._monitor.close(linger_ms=0)
        self.socket.close(linger_ms=1000)


class Bus:
    """The sockets of one component. Create inside a running event loop; `close()` when done."""

    def __init__(
        self,
        endpoints: BrokerEndpoints,
        publisher_id: str,
        registry: prom.CollectorRegistry,
        *,
        heartbeat_interval_s: float = 1.0,
        high_water_mark: int = 100_000,
    ) -> None:
        self.endpoints = endpoints
        self.publisher_id = publisher_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self.high_water_mark = high_water_mark
        self.metrics = BusMetrics(registry)
        self.context = zmq.Context()
        self._connections: list[_Connection] = []
        self._subscribers: list[Subscriber] = []
        self._requesters: list[Requester] = []

    def _connect(self, kind: int, role: str, url: str, **options: int) -> _LoopSocket:
        socket = self.context.socket(kind)
        for option, value in options.items():
            socket.setsockopt(getattr(zmq, option), value)
        connection = _Connection(self, socket, role, url)
        self._connections.append(connection)
        return connection.socket

    def publisher(self) -> Publisher:
        socket = self._connect(
            zmq.PUB, "publisher", self.endpoints.publish_url, SNDHWM=self.high_water_mark
        )
        return Publisher(self, socket.socket)

    def subscriber(self, prefixes: Iterable[str]) -> Subscriber:
        socket = self.context.socket(zmq.SUB)
        socket.setsockopt(zmq.RCVHWM, self.high_water_mark)
        # Subscribe before connecting, so that nothing published after the connect is missed.
        for prefix in (*prefixes, topics.HEARTBEAT):
            socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        connection = _Connection(self, socket, "subscriber", self.endpoints.subscribe_url)
        self._connections.append(connection)
        subscriber = Subscriber(self, connection.socket)
        self._subscribers.append(subscriber)
        return subscriber

    def requester(self) -> Requester:
        # IMMEDIATE: queue requests only on a live connection, so that with no broker a request
        # fails at once instead of waiting out its timeout (or leaving, stale, on reconnect).
        socket = self._connect(zmq.DEALER, "requester", self.endpoints.request_url, IMMEDIATE=1)
        requester = Requester(self, socket)
        self._requesters.append(requester)
        return requester

    def responder(self) -> Responder:
        return Responder(self, self._connect(zmq.DEALER, "responder", self.endpoints.reply_url))

    def readiness(self) -> dict[str, bool]:
        checks = {f"bus.{c.role}": c.connected for c in self._connections}
        stale_after_ns = int(3 * self.heartbeat_interval_s * 1e9)
        for subscriber in self._subscribers:
            checks["bus.heartbeat"] = time.time_ns() - subscriber.last_heartbeat_ns < stale_after_ns
        return checks

    def close(self) -> None:
        for requester in self._requesters:
            requester.close()
        for connection in self._connections:
            connection.close()
        self._connections.clear()
        self.context.term()


class Publisher:
    """Publishes envelopes numbered per topic, so that a subscriber to any prefix can see gaps."""

    def __init__(self, bus: Bus, socket: zmq.Socket) -> None:
        self._bus = bus
        self._socket = socket
        self._seq: dict[str, int] = {}
        self._published = bus.metrics.published

    def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        ts_event_ns: int,
        trace_id: str | None = None,
    ) -> wire.Envelope:
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        envelope = wire.Envelope(
            topic=topic,
            publisher=self._bus.publisher_id,
            seq=seq,
            ts_event_ns=ts_event_ns,
            ts_send_ns=time.time_ns(),
            trace_id=trace_id or new_trace_id(),
            payload=payload,
        )
        self._socket.send(wire.encode(envelope), copy=False)
        self._published.labels(type(payload).__name__).inc()
        return envelope


class Subscriber:
    """Receives decoded envelopes; skips (and counts) malformed frames; counts sequence gaps.

    Iterate it (`async for envelope in subscriber`) or call `recv()`; cancelling a pending
    `recv()` loses nothing and leaves the subscriber usable.
    """

    def __init__(self, bus: Bus, socket: _LoopSocket) -> None:
        self._bus = bus
        self._socket = socket
        self._last_seq: dict[tuple[str, str], int] = {}
        self.last_heartbeat_ns = 0

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> wire.Envelope:
        return await self.recv()

    async def recv(self) -> wire.Envelope:
        metrics = self._bus.metrics
        while True:
            frame = await self._socket.recv()
            try:
                envelope = wire.decode(frame)
            except CodecError as exc:
                metrics.malformed.inc()
                log.warning("Dropped a malformed message: %s", exc)
                continue
            self._track_sequence(envelope)
            if isinstance(envelope.payload, Heartbeat):
                self.last_heartbeat_ns = time.time_ns()
                continue
            metrics.received.labels(type(envelope.payload).__name__).inc()
            return envelope

    def _track_sequence(self, envelope: wire.Envelope) -> None:
        key = (envelope.publisher, envelope.topic)
        last = self._last_seq.get(key)
        self._last_seq[key] = envelope.seq
        if last is None or envelope.seq == last + 1:
            return
        if envelope.seq <= last:
            log.info("Publisher %s restarted its sequence.", envelope.publisher)
            return
        missed = envelope.seq - last - 1
        self._bus.metrics.gaps.labels(envelope.publisher).inc(missed)
        log.warning(
            "Missed %d message(s) from %s on %s (sequence %d after %d).",
            missed,
            envelope.publisher,
            envelope.topic,
            envelope.seq,
            last,
        )


class Requester:
    """Request/reply through the broker, many requests in flight, each with its own timeout."""

    def __init__(self, bus: Bus, socket: _LoopSocket) -> None:
        self._bus = bus
        self._socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[bytes, asyncio.Future[wire.Envelope]] = {}
        self._seq = 0
        self._reader = asyncio.get_running_loop().create_task(self._read_replies())

    def request(
        self, topic: str, payload: Payload, *, timeout_s: float, trace_id: str | None = None
    ) -> Awaitable[wire.Envelope]:
        """Send now and return what to await for the reply (`BusError` after `timeout_s`).

        The request leaves at the call, not at the first await: a caller that hands the wait to
        a task does not delay the request behind whatever else its loop has queued.
        """
        request_id = next(self._ids).to_bytes(8, "big")
        self._seq += 1
        now = time.time_ns()
        envelope = wire.Envelope(
            topic, self._bus.publisher_id, self._seq, now, now, trace_id or new_trace_id(), payload
        )
        future: asyncio.Future[wire.Envelope] = asyncio.get_running_loop().create_future()
        try:
            self._socket.send_multipart([request_id, wire.encode(envelope)])
        except zmq.Again:
            # No broker to take it: as good as no reply, and known at once.
            self._bus.metrics.requests.labels("unsent").inc()
            future.set_exception(BusError(f"cannot send {topic}: the broker is not reachable"))
            return future
        self._pending[request_id] = future
        return self._reply(request_id, future, topic, timeout_s)

    async def _reply(
        self, request_id: bytes, future: asyncio.Future[wire.Envelope], topic: str, timeout_s: float
    ) -> wire.Envelope:
        try:
            reply = await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            self._bus.metrics.requests.labels("timeout").inc()
            raise BusError(f"no reply to {topic} within {timeout_s:g} s") from exc
        finally:
            self._pending.pop(request_id, None)
        self._bus.metrics.requests.labels("ok").inc()
        return reply

    async def _read_replies(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) != 2:
                self._bus.metrics.malformed.inc()
                continue
            future = self._pending.get(frames[0])
            if future is None or future.done():
                continue  # a reply after its timeout: the caller has already given up
            try:
                future.set_result(wire.decode(frames[1]))
            except CodecError as exc:
                self._bus.metrics.malformed.inc()
                future.set_exception(BusError(f"malformed reply: {exc}"))

    def close(self) -> None:
        self._reader.cancel()


Handler = Callable[[wire.Envelope], Awaitable[Payload]]


class Responder:
    """Serves requests arriving through the broker, one at a time, in arrival order."""

    def __init__(self, bus: Bus, socket: _LoopSocket) -> None:
        self._bus = bus
        self._socket = socket
        self._seq = 0

    async def serve(self, topic: str, handler: Handler) -> None:
        metrics = self._bus.metrics
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) != 3:
                metrics.malformed.inc()
                log.warning("Dropped a request of %d frames (expected 3).", len(frames))
                continue
            identity, request_id, body = frames
            try:
                request = wire.decode(body)
            except CodecError as exc:
                metrics.malformed.inc()
                log.warning("Dropped a malformed request: %s", exc)
                continue
            metrics.received.labels(type(request.payload).__name__).inc()
            reply = await handler(request)
            self._seq += 1
            now = time.time_ns()
            envelope = wire.Envelope(
                topic, self._bus.publisher_id, self._seq, now, now, request.trace_id, reply
            )
            try:
                self._socket.send_multipart([identity, request_id, wire.encode(envelope)])
            except zmq.Again:
                log.warning("Could not send the reply to a %s request: the broker is gone.", topic)
                continue
            metrics.published.labels(type(reply).__name__).inc()
