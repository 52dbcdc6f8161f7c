"""The broker: XSUB/XPUB for publish/subscribe and ROUTER/DEALER for request/reply.

Each lane is libzmq's steerable proxy in its own thread, so forwarding runs in C at the speed of a
plain proxy. The proxies count what they forward themselves (`STATISTICS` on their control socket);
`/metrics` asks them at scrape time, so counting costs nothing per message. A one-frame wire
(`core.wire`) makes those frame counts message counts.

The broker also publishes a heartbeat into its own pub/sub lane, so that subscribers can tell a
quiet market from a broken path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import zmq
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from components.core import topics
from components.core.events import Heartbeat
from components.runtime.component import Component

log = logging.getLogger(__name__)

# STATISTICS replies with 8 uint64 frames: frontend msgs in, bytes in, msgs out, bytes out, then
# the same four for the backend.
_STATS = struct.Struct("<Q")


class _Lane:
    """One proxy thread between two bound sockets, steered through an inproc REP socket."""

    def __init__(
        self, context: zmq.Context, name: str, front: zmq.Socket, back: zmq.Socket
    ) -> None:
        self.name = name
        self._control_url = f"inproc://broker-{name}-control"
        control = context.socket(zmq.REP)
        control.bind(self._control_url)
        self._client = context.socket(zmq.REQ)
        self._client.setsockopt(zmq.RCVTIMEO, 1000)
        self._client.setsockopt(zmq.SNDTIMEO, 1000)
        self._client.connect(self._control_url)
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, args=(front, back, control), name=f"broker-{name}", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _run(front: zmq.Socket, back: zmq.Socket, control: zmq.Socket) -> None:
        try:
            zmq.proxy_steerable(front, back, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for socket in (front, back, control):
                socket.close(linger=0)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def statistics(self) -> tuple[int, ...]:
        """(front in, front bytes in, front out, front bytes out, back in, …, back bytes out)."""
        with self._lock:
            self._client.send(b"STATISTICS")
            return tuple(_STATS.unpack(frame)[0] for frame in self._client.recv_multipart())

    def stop(self) -> None:
        with self._lock:
            with contextlib.suppress(zmq.ZMQError):
                self._client.send(b"TERMINATE")
            self._client.close(linger=0)
        self._thread.join(timeout=2)


class _ForwardedCollector:
    """Reads the proxies' counters when Prometheus scrapes."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def collect(self) -> Iterator[Any]:
        forwarded = CounterMetricFamily(
            "broker_messages_forwarded",
            "Messages forwarded by the broker, by lane and direction.",
            labels=["lane", "direction"],
        )
        volume = CounterMetricFamily(
            "broker_bytes_forwarded",
            "Bytes forwarded by the broker, by lane and direction.",
            labels=["lane", "direction"],
        )
        up = GaugeMetricFamily("broker_lane_up", "1 while the lane's proxy runs.", labels=["lane"])
        for lane in self._broker.lanes:
            up.add_metric([lane.name], int(lane.alive))
            if not lane.alive:
                continue
            try:
                stats = lane.statistics()
            except zmq.ZMQError:
                continue
            # front→back is what the lane exists for: publishers → subscribers, requests → servers;
            # back→front carries subscriptions (pub/sub) or replies (request/reply).
            forwarded.add_metric([lane.name, "forward"], stats[6])
            volume.add_metric([lane.name, "forward"], stats[7])
            forwarded.add_metric([lane.name, "backward"], stats[2])
            volume.add_metric([lane.name, "backward"], stats[3])
        yield from (forwarded, volume, up)


class Broker(Component):
    name = "broker"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lanes: list[_Lane] = []
        self._context: zmq.Context | None = None
        registry = self.registry
        registry.register(_ForwardedCollector(self))  # type: ignore[arg-type]

    def _bind(self, kind: int, port: int) -> zmq.Socket:
        assert self._context is not None
        socket = self._context.socket(kind)
        hwm = self.spec.broker.high_water_mark
        socket.setsockopt(zmq.SNDHWM, hwm)
        socket.setsockopt(zmq.RCVHWM, hwm)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"tcp://{self.settings.listen_host}:{port}")
        return socket

    def start_lanes(self) -> None:
        """Bind every port and start both proxies (synchronously: ports are bound on return)."""
        ports = self.settings.broker
        self._context = zmq.Context()
        self.lanes = [
            _Lane(
                self._context,
                "pubsub",
                self._bind(zmq.XSUB, ports.publish_port),
                self._bind(zmq.XPUB, ports.subscribe_port),
            ),
            _Lane(
                self._context,
                "request",
                self._bind(zmq.ROUTER, ports.request_port),
                self._bind(zmq.DEALER, ports.reply_port),
            ),
        ]
        log.info(
            "Broker listening: publish %d, subscribe %d, request %d, reply %d.",
            ports.publish_port,
            ports.subscribe_port,
            ports.request_port,
            ports.reply_port,
        )

    async def run(self) -> None:
        self.start_lanes()
        publisher = self.bus.publisher()
        interval_s = self.spec.broker.heartbeat_interval_ms / 1000
        while True:
            now = time.time_ns()
            publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=now), ts_event_ns=now)
            await asyncio.sleep(interval_s)

    def readiness(self) -> dict[str, bool]:
        return {f"lane.{lane.name}": lane.alive for lane in self.lanes} or {"lanes": False}

    def status(self) -> dict[str, Any]:
        return {"component": self.name, "lanes": {lane.name: lane.alive for lane in self.lanes}}

    async def close(self) -> None:
        for lane in self.lanes:
            lane.stop()
        if self._context is not None:
            self._context.term()
            self._context = None
