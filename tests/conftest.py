"""Shared fixtures: free ports, specs, runtime settings and an in-process broker on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core.config import TradingSystemSpec
from components.runtime.settings import BrokerEndpoints, RuntimeSettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_settings(
    component: str, endpoints: BrokerEndpoints, data_dir: Path, **overrides: object
) -> RuntimeSettings:
    values: dict[str, object] = {
        "system_name": "test",
        "component_id": component,
        "listen_host": "127.0.0.1",
        "http_port": free_port(),
        "broker": endpoints,
        "data_dir": data_dir / component,
        "shutdown_timeout_s": 5.0,
        **overrides,
    }
    return RuntimeSettings.model_validate(values)


@pytest.fixture
def spec() -> TradingSystemSpec:
    return TradingSystemSpec(symbols=["AAPL", "MSFT"])


@pytest.fixture
def endpoints() -> BrokerEndpoints:
    return BrokerEndpoints(
        host="127.0.0.1",
        publish_port=free_port(),
        subscribe_port=free_port(),
        request_port=free_port(),
        reply_port=free_port(),
    )


@pytest.fixture
def broker(spec: TradingSystemSpec, endpoints: BrokerEndpoints, tmp_path: Path) -> Iterator[Broker]:
    """The real broker's proxies, in this process (no heartbeat: tests publish their own)."""
    settings = make_settings("broker", endpoints, tmp_path)
    broker = Broker(spec, settings, prom.CollectorRegistry())
    broker.start_lanes()
    yield broker
    for lane in broker.lanes:
        lane.stop()
    assert broker._context is not None
    broker._context.term()
