"""The market-data component as a real child process on an Alpaca feed (the local fake stream)
and the real broker: `/ready` follows the connection (ready when subscribed, 503 while the server
refuses, ready again after reconnecting), trades reach a subscriber, `/metrics` shows the feed
state and reconnects, SIGTERM exits 0, and the secret key appears in no log line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import prometheus_client as prom
import pytest
import yaml

from components.broker.service import Broker
from components.core import topics
from components.core.events import Trade
from components.local import free_ports
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints
from tests.fakes import alpaca_stream
from tests.fakes.alpaca_stream import KEY, SECRET

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def _child(
    config: Path, endpoints: BrokerEndpoints, http_port: int, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "TS_LISTEN_HOST": "127.0.0.1",
        "TS_HTTP_PORT": str(http_port),
        "TS_BROKER_HOST": "127.0.0.1",
        "TS_BROKER_PUBLISH_PORT": str(endpoints.publish_port),
        "TS_BROKER_SUBSCRIBE_PORT": str(endpoints.subscribe_port),
        "TS_BROKER_REQUEST_PORT": str(endpoints.request_port),
        "TS_BROKER_REPLY_PORT": str(endpoints.reply_port),
        "TS_DATA_DIR": str(tmp_path / "marketdata"),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "components", "component", "marketdata", "--config", str(config),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _ready(session: aiohttp.ClientSession, port: int) -> tuple[int, dict]:
    try:
        async with session.get(f"http://127.0.0.1:{port}/ready") as response:
            return response.status, await response.json()
    except aiohttp.ClientError:
        return 0, {}


async def _until_ready(
    session: aiohttp.ClientSession, port: int, status: int, timeout_s: float = 15
) -> dict:
    async with asyncio.timeout(timeout_s):
        while True:
            code, body = await _ready(session, port)
            if code == status:
                return body
            await asyncio.sleep(0.05)


def _trade(price: float) -> dict[str, object]:
    ns = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
    return {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": price, "s": 10, "c": [], "t": stamp}


async def test_component_when_alpaca_feed_then_ready_follows_connection_and_trades_flow(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    async with alpaca_stream.running() as fake:
        alpaca = {"url": fake.url, "backoff_initial_s": 0.1, "backoff_max_s": 0.2}
        spec = {
            "symbols": ["AAPL"],
            "broker": {"heartbeat_interval_ms": 200},
            "marketdata": {"feed": {"kind": "alpaca", "alpaca": alpaca}},
        }
        config = tmp_path / "spec.yaml"
        config.write_text(yaml.safe_dump(spec))
        (http_port,) = free_ports(1)
        bus = Bus(endpoints, "listener", prom.CollectorRegistry())
        trades = bus.subscriber([topics.TRADES])
        heartbeat = asyncio.create_task(_heartbeats(bus))
        try:
            async with (
                _child(config, endpoints, http_port, tmp_path) as child,
                aiohttp.ClientSession() as session,
            ):
                await _until_ready(session, http_port, 200)
                assert fake.received[1] == {"action": "subscribe", "trades": ["AAPL"],
                                            "quotes": ["AAPL"]}  # fmt: skip
                async with asyncio.timeout(10):
                    received = None
                    while received is None:
                        await fake.push([_trade(189.5)])
                        with contextlib.suppress(TimeoutError):
                            received = await asyncio.wait_for(trades.recv(), 0.5)
                assert (
                    isinstance(received.payload, Trade) and str(received.payload.price) == "189.5"
                )

                fake.refuse_next(*[503] * 10_000)
                await fake.drop_all()
                body = await _until_ready(session, http_port, 503)
                assert body["checks"]["feed.connection"] is False
                async with session.get(f"http://127.0.0.1:{http_port}/metrics") as response:
                    metrics = await response.text()
                assert 'marketdata_feed_reconnects_total{feed="alpaca-iex"}' in metrics
                assert (
                    'marketdata_feed_state{feed="alpaca-iex",marketdata_feed_state="reconnecting"}'
                    " 1.0"
                    in metrics
                    or 'marketdata_feed_state="connecting"} 1.0' in metrics
                )
                fake._refuse_next.clear()
                await _until_ready(session, http_port, 200)

                child.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(child.communicate(), 15)
                assert child.returncode == 0
        finally:
            heartbeat.cancel()
            bus.close()
    log = output.decode()
    assert "Feed alpaca-iex is subscribed." in log and "is reconnecting" in log
    assert SECRET not in log


async def _heartbeats(bus: Bus) -> None:
    """The in-process broker sends none: publish them, as the broker process does."""
    from components.core.events import Heartbeat

    publisher = bus.publisher()
    while True:
        publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=time.time_ns()), ts_event_ns=0)
        await asyncio.sleep(0.1)
