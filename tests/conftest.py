"""Shared fixtures: free ports, specs, runtime settings and an in-process broker on 127.0.0.1."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core.config import TradingSystemSpec
from components.core.events import Payload
from components.local import free_ports
from components.runtime.settings import BrokerEndpoints, RuntimeSettings


def _descendants(pid: int) -> dict[int, str]:
    """Live (not zombie) processes below `pid`, with their command lines."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = (Path("/proc") / str(child) / "cmdline").read_text()
                except OSError:
                    continue
                frontier.append(child)
    return {child: cmd.replace("\0", " ").strip() for child, cmd in found.items()}


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """A test that leaves a child process running fails (after a short grace to exit).

    Processes of wider-scoped fixtures, started before the test, are theirs to stop."""
    before = set(_descendants(os.getpid()))
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = {p: c for p, c in _descendants(os.getpid()).items() if p not in before}
        if not leaked:
            break
        time.sleep(0.05)
    assert not leaked, f"processes left running: {leaked}"


class RecordingPublisher:
    """Stands in for a component's `Publisher` in tests that call its handlers directly."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Payload, str | None]] = []

    def publish(
        self, topic: str, payload: Payload, *, ts_event_ns: int, trace_id: str | None = None
    ) -> None:
        self.sent.append((topic, payload, trace_id))


def make_settings(
    component: str, endpoints: BrokerEndpoints, data_dir: Path, **overrides: object
) -> RuntimeSettings:
    values: dict[str, object] = {
        "system_name": "test",
        "component_id": component,
        "listen_host": "127.0.0.1",
        "http_port": free_ports(1)[0],
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
    publish, subscribe, request, reply = free_ports(4)
    return BrokerEndpoints(
        host="127.0.0.1",
        publish_port=publish,
        subscribe_port=subscribe,
        request_port=request,
        reply_port=reply,
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
